#include <vector>

#include <doctest/doctest.h>

#include <ogpsa/cpu/detail/stacked.hpp>

#include "cpu/eigen_threads.hpp"
#include "support.hpp"

using ogpsa::index_t;
namespace d = ogpsa::cpu::detail;
namespace t = ogpsa::test;

namespace {

template <class T>
std::vector<d::columns_ref<T>> refs(const std::vector<t::matrix<T>>& parts) {
  return d::columns_of<T>(std::span<const t::matrix<T>>(parts));
}

TEST_CASE("row_chunks cut the rows into runs of whole panels that depend on the shapes only") {
  for (const index_t rows : {0, 1, 63, 64, 65, 1000, 70001}) {
    for (const index_t most : {1, 3, 64}) {
      CAPTURE(rows);
      CAPTURE(most);
      const d::row_chunks chunks(rows, 64, most);
      CHECK(chunks.count >= 1);
      CHECK(chunks.count <= most);
      CHECK(chunks.begin(0) == 0);
      CHECK(chunks.begin(chunks.count) == rows);
      for (index_t c = 0; c < chunks.count; ++c) {
        CHECK(chunks.begin(c) <= chunks.begin(c + 1));
        CHECK((chunks.begin(c) % 64 == 0 || chunks.begin(c) == rows));
      }
    }
  }
}

/// `rows` x `width` in two parts, against `others` columns (the cross Gram matrix's and the
/// product's result columns): Eigen's product API splits a product of 8 result columns or more, and
/// rounds it differently when its inner dimension is cut into blocks.
template <class T>
void check_any_thread_count(index_t rows, index_t width, index_t others) {
  CAPTURE(rows);
  CAPTURE(width);
  CAPTURE(others);
  const t::eigen_threads eigen(8);
  // Many panels and chunks, the last one short. Parts of 3 and width - 3 columns.
  const std::vector<t::matrix<T>> parts{t::random_matrix<T>(rows, 3, 1),
                                        t::random_matrix<T>(rows, width - 3, 2)};
  const std::vector<t::matrix<T>> b{t::random_matrix<T>(rows, others, 3)};
  const t::matrix<double> x = t::random_matrix<double>(width, others, 4);
  t::matrix<T> whole(rows, width);
  whole << parts[0], parts[1];
  const t::matrix<double> wd = whole.template cast<double>();

  const ogpsa::host_matrix cross = d::stacked_gram<T>(1, refs(parts), refs(b));
  const ogpsa::host_matrix self = d::stacked_gram<T>(1, refs(parts), {});
  t::matrix<T> product(rows, others);
  d::stacked_product<T>(1, refs(parts), x, product, false);
  CHECK((cross - wd.transpose() * b[0].template cast<double>()).cwiseAbs().maxCoeff() < 1e-9);
  CHECK((self - wd.transpose() * wd).cwiseAbs().maxCoeff() < 1e-9);
  CHECK((self - self.transpose()).cwiseAbs().maxCoeff() == 0.0);
  CHECK((product.template cast<double>() - wd * x.cast<T>().template cast<double>()).cwiseAbs().maxCoeff() <
        100 * t::tolerance<T>());
  for (const int threads : {2, 3, 7}) {
    CAPTURE(threads);
    CHECK(t::same_bits(d::stacked_gram<T>(threads, refs(parts), refs(b)), cross));
    CHECK(t::same_bits(d::stacked_gram<T>(threads, refs(parts), {}), self));
    t::matrix<T> again(rows, others);
    d::stacked_product<T>(threads, refs(parts), x, again, false);
    CHECK(t::same_bits(again, product));
  }
}

}  // namespace

TEST_CASE_TEMPLATE("stacked products give the same bits on any number of threads", T, float, double) {
  check_any_thread_count<T>(70001, 4, 5);                     // the thin kernels
  check_any_thread_count<T>(70001, d::thin_columns + 4, 24);  // products of gathered panels
  check_any_thread_count<T>(3001, 800, 24);                   // ... of an inner dimension in blocks
}

TEST_CASE("a stacked product may write over its first part, or add to its output") {
  t::matrix<float> a = t::random_matrix<float>(70001, 3, 5);
  const t::matrix<float> c = t::random_matrix<float>(70001, 2, 6);
  const t::matrix<double> x = t::random_matrix<double>(5, 3, 7);
  t::matrix<float> joined(70001, 5);
  joined << a, c;
  const t::matrix<double> expected = joined.cast<double>() * x.cast<float>().cast<double>();
  const std::vector<d::columns_ref<float>> both{d::columns_of<float>(a), d::columns_of<float>(c)};
  d::stacked_product<float>(2, both, x, a, false);
  CHECK((a.cast<double>() - expected).cwiseAbs().maxCoeff() < 100 * t::tolerance<float>());
  t::matrix<float> sum = t::matrix<float>::Ones(70001, 3);
  const std::vector<d::columns_ref<float>> joined_ref{d::columns_of<float>(joined)};
  d::stacked_product<float>(2, joined_ref, x, sum, true);
  CHECK((sum.cast<double>().array() - expected.array() - 1).abs().maxCoeff() < 100 * t::tolerance<float>());
}
