#include <cstddef>
#include <vector>

#include <doctest/doctest.h>

#include <ogpsa/cuda/detail/stacked_sources.hpp>

using namespace ogpsa::cuda::detail;
using ogpsa::index_t;

// 150 parts, every fifth one empty: two launches instead of 120, covering every column once, in
// order, each at its part's address.
TEST_CASE("parts side by side are gathered a batch of at most stack_parts parts per launch") {
  static const float storage[1] = {};
  std::vector<column_source<float>> parts;
  for (int i = 0; i < 150; ++i) parts.push_back({storage + i, i % 5, 100 + i});
  std::size_t next = 0;
  index_t columns = 0;
  int part = 0, launches = 0;
  while (next < parts.size()) {
    const stacked_sources<float> batch = next_batch(std::span<const column_source<float>>(parts), next);
    ++launches;
    REQUIRE(batch.count <= stack_parts);
    CHECK(batch.first_col[0] == 0);
    for (int b = 0; b < batch.count; ++b) {
      while (parts[static_cast<std::size_t>(part)].cols == 0) ++part;  // empty parts take no slot
      const column_source<float>& p = parts[static_cast<std::size_t>(part++)];
      CHECK(batch.data[b] == p.data);
      CHECK(batch.col_stride[b] == p.col_stride);
      CHECK(batch.first_col[b + 1] - batch.first_col[b] == p.cols);
    }
    columns += batch.first_col[batch.count];
  }
  CHECK(launches == 2);  // 120 non-empty parts
  index_t expected = 0;
  for (const column_source<float>& p : parts) expected += p.cols;
  CHECK(columns == expected);
}

TEST_CASE("only empty parts make one launch of no columns") {
  const std::vector<column_source<float>> parts(3, column_source<float>{nullptr, 0, 7});
  std::size_t next = 0;
  const stacked_sources<float> batch = next_batch(std::span<const column_source<float>>(parts), next);
  CHECK(next == 3);
  CHECK(batch.count == 0);
  CHECK(batch.first_col[0] == 0);
}
