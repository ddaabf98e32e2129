#pragma once
// Shared benchmark helpers: the registry of cases, the minimal-traffic model, test data, and the
// benchmark model's tensor list.
//
// Every benchmark is named "<kind>/<implementation>/<variant>/<arg>:<value>...": kind is roofline,
// flat, matrix or model; implementation is ogpsa, a peer (eigen, torch, published), or a
// reference run (the roofline's copy and triad, ogpsa on one block of the model's size). A case is
// the name without its implementation; the summary (summary.cpp) compares implementations case by
// case.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include <ogpsa/ogpsa.hpp>

namespace ogpsa::bench {

/// One implementation's benchmark function and the argument lists it runs with.
struct entry {
  std::string kind;
  std::string implementation;
  std::string variant;  ///< the data's element types, e.g. "f32" or "bf16" (the basis)
  void (*run)(benchmark::State&);
  std::vector<std::vector<std::int64_t>> args;
  std::vector<std::string> arg_names;
};

/// Every translation unit adds its entries at start-up; `register_cases` (main.cpp) then registers
/// them case by case, so that the implementations of one case run back to back on the same data.
inline std::vector<entry>& entries() {
  static std::vector<entry> all;
  return all;
}
inline bool add(entry e) {
  entries().push_back(std::move(e));
  return true;
}

/// Registers every entry with Google Benchmark, ordered by kind, then case, then implementation
/// (ogpsa, the peers, reference runs).
void register_cases();

/// Functions that set a library's thread count (LibTorch's, when the torch peers are built), so
/// that `use_threads` gives every implementation the same number of threads.
inline std::vector<void (*)(int)>& thread_setters() {
  static std::vector<void (*)(int)> all;
  return all;
}

/// Runs ogpsa, Eigen's GEMM and, through `thread_setters`, the peers on `threads` threads. Set once
/// before any benchmark runs: LibTorch sets OpenMP's thread count to its own intra-op default (the
/// number of physical cores, one on a two-vCPU VM) the first time it runs an operation, which would
/// otherwise change the thread count of everything measured after its first peer.
inline void use_threads(int threads) {
#if defined(_OPENMP)
  omp_set_num_threads(threads);
#endif
  for (auto set : thread_setters()) set(threads);
}

/// Reports the bytes one iteration moves as a rate (bytes_per_second in the JSON, GB/s in the
/// summary), and the gradient's element count, which picks the copy roofline of the same size.
inline void set_traffic(benchmark::State& state, double bytes_per_iteration, double gradient_elements) {
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes_per_iteration) *
                          static_cast<std::int64_t>(state.iterations()));
  state.counters["gradient_elements"] = gradient_elements;
}

/// Minimal traffic of a flat rank-k projection of d elements: g and U read once for U^T g, then
/// U and g read and g written once for the update, (3 + 2k) d elements.
template <class G, class B>
double flat_traffic(index_t d, index_t k) {
  return static_cast<double>(d) * (3.0 * sizeof(G) + 2.0 * static_cast<double>(k) * sizeof(B));
}

/// Minimal traffic of a matrix-side projection G - U (U^T G) of an m x n gradient with an m x k
/// basis: G read twice and written once, U read twice.
template <class G, class B>
double matrix_traffic(index_t m, index_t n, index_t k) {
  return 3.0 * static_cast<double>(m * n) * sizeof(G) + 2.0 * static_cast<double>(m * k) * sizeof(B);
}

/// Fills out[0, n) with pseudo-random values, uniform in [-scale, scale), from a counter-based
/// hash: cheap enough for a billion elements, and the same on every run.
template <class T>
void fill_random(T* out, index_t n, std::uint64_t seed, double scale = 1.0) {
  for (index_t i = 0; i < n; ++i) {
    std::uint64_t z = (static_cast<std::uint64_t>(i) + seed * 0x9e3779b97f4a7c15ull) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 31)) * 0x94d049bb133111ebull;
    z ^= z >> 29;
    const double u = static_cast<double>(z >> 11) * 0x1p-53;  // [0, 1)
    out[i] = ogpsa::detail::narrow<T>(scale * (2 * u - 1));
  }
}

/// A d x k basis (column-major) of nearly orthonormal random directions: projection cost does not
/// depend on exact orthonormality, and a QR of 16M x 32 would dominate the set-up.
template <class T>
Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic> random_basis(index_t d, index_t k, std::uint64_t seed) {
  Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic> u(d, k);
  fill_random(u.data(), d * k, seed, std::sqrt(3.0 / static_cast<double>(std::max<index_t>(d, 1))));
  return u;
}

/// Gives every flat block of a projector a random basis of rank k (through the public state API).
template <class Projector>
void set_random_bases(Projector& p, index_t k, std::uint64_t seed) {
  auto state = p.state();
  for (auto& b : state.blocks) {
    index_t d = 1;
    for (index_t e : b.extents) d *= e;
    const index_t rows = b.kind == family::flat ? d : b.kind == family::left ? b.extents[0] : b.extents[1];
    b.has_subspace = true;
    b.basis = random_basis<typename Projector::basis_type>(rows, k, seed++);
  }
  p.restore(state);
}

/// Bytes of the largest data cache (the last level's size from Linux's sysfs; 32 MiB elsewhere).
inline double detected_cache_bytes() {
  double largest = 0;
  for (int index = 0; index < 8; ++index) {
    std::ifstream in("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/size");
    std::string size;
    if (!(in >> size) || size.empty()) continue;
    const double unit = size.back() == 'K' ? 1024.0 : size.back() == 'M' ? 1024.0 * 1024 : 1.0;
    largest = std::max(largest, std::stod(size) * unit);
  }
  return largest > 0 ? largest : 32.0 * 1024 * 1024;
}

/// The cache size that every case's data is replicated to exceed twice over (`rotation`); set by
/// --ogpsa_cache_bytes (0: one copy of every case, as the smoke test runs).
inline double& cache_bytes() {
  static double bytes = detected_cache_bytes();
  return bytes;
}

/// Copies of one case's data (`Data(args...)`, which reports its size as `bytes()`), together at
/// least twice the size of the last-level cache, used in turn by successive iterations.
///
/// Why: a 16M-element case is 64 MiB per array, and the last-level cache of a server can hold
/// several of them, so that an implementation run again and again on one copy is served partly
/// from cache, by how much depending on its working set (a copy's 128 MiB stays, a rank-8
/// projection's 576 MiB does not). STREAM's rule avoids that by sizing arrays to at least four
/// times the cache; rotating through copies does the same without changing the case's shape, and
/// in the steady state every iteration also pays for writing back its predecessor's stores, as
/// an optimizer step does. Every roofline, ogpsa and peer benchmark reads its data this way, so
/// their ratios compare transfers from memory with transfers from memory.
template <class Data>
class rotation {
 public:
  template <class... Args>
  explicit rotation(const Args&... args) {
    double bytes = 0;
    do {
      copies_.push_back(std::make_unique<Data>(args...));
      bytes += static_cast<double>(copies_.back()->bytes());
    } while (bytes < 2 * cache_bytes());
  }

  /// The copy the next iteration works on.
  Data& next() {
    Data& d = *copies_[next_];
    next_ = (next_ + 1) % copies_.size();
    return d;
  }
  /// Copy r < size(), for set-up done once per copy before timing.
  Data& copy(std::size_t r) { return *copies_[r]; }
  std::size_t size() const { return copies_.size(); }

 private:
  std::vector<std::unique_ptr<Data>> copies_;
  std::size_t next_ = 0;
};

/// Holds the data of the latest `shared_data` request, whatever its type.
struct data_slot {
  std::string key;
  std::shared_ptr<void> data;
};
inline data_slot& the_data_slot() {
  static data_slot slot;
  return slot;
}

/// The copies (`rotation`) of the latest request's data, constructed from `args` when `key`
/// differs from the previous request's, whose data is freed first. Google Benchmark calls a
/// benchmark several times (to size its iteration count, and once per repetition): this builds
/// its data once and keeps only one case's data alive. The key must name the data's type and shape.
template <class Data, class... Args>
rotation<Data>& shared_data(const std::string& key, const Args&... args) {
  data_slot& s = the_data_slot();
  if (!s.data || s.key != key) {
    s.data.reset();
    s.data = std::make_shared<rotation<Data>>(args...);
    s.key = key;
  }
  return *static_cast<rotation<Data>*>(s.data.get());
}

/// One parameter tensor of the benchmark model.
struct tensor_shape {
  index_t rows;
  index_t cols;
  index_t size() const { return rows * cols; }
};

/// The parameter tensors of a ~100M-parameter decoder (Llama-style: d_model 768, 12 layers,
/// SwiGLU width 2048, vocabulary 8192, untied head): embedding; per layer q, k, v, o, gate, up,
/// down and two norms; final norm; lm head. 111 tensors, 97.6M parameters.
inline std::vector<tensor_shape> decoder_tensors() {
  constexpr index_t model = 768, hidden = 2048, layers = 12, vocabulary = 8192;
  std::vector<tensor_shape> t{{vocabulary, model}};
  for (index_t l = 0; l < layers; ++l) {
    for (int i = 0; i < 4; ++i) t.push_back({model, model});  // q, k, v, o
    t.push_back({hidden, model});                              // gate
    t.push_back({hidden, model});                              // up
    t.push_back({model, hidden});                              // down
    t.push_back({1, model});                                   // attention norm
    t.push_back({1, model});                                   // feed-forward norm
  }
  t.push_back({1, model});
  t.push_back({vocabulary, model});
  return t;
}

inline index_t total_size(const std::vector<tensor_shape>& tensors) {
  index_t n = 0;
  for (const auto& t : tensors) n += t.size();
  return n;
}

/// Flat projection sizes and ranks, matrix-side shapes and ranks, the model's rank.
inline constexpr index_t flat_sizes[] = {index_t{1} << 20, index_t{1} << 24};
inline constexpr index_t flat_ranks[] = {1, 2, 8, 32};
inline constexpr index_t matrix_shapes[][2] = {{4096, 4096}, {4096, 11008}, {11008, 4096}};
inline constexpr index_t matrix_ranks[] = {8, 64};
/// Two reference sets per tensor, as in the published method.
inline constexpr index_t model_rank = 2;

/// "f32" or "bf16": how a variant names its basis type.
template <class B>
std::string label() {
  return std::is_same_v<B, float> ? "f32" : std::is_same_v<B, ogpsa::bfloat16> ? "bf16" : "other";
}

/// The projector every ogpsa benchmark uses: float gradients, a B basis set directly (through
/// the public state API, `set_random_bases`) and never re-estimated.
template <class B>
using bench_projector =
    ogpsa::projector<ogpsa::exact_svd, ogpsa::orthogonal, ogpsa::fixed_basis, ogpsa::storage<float, B>>;

/// One flat block: d float gradient elements and a rank-k basis stored as B.
template <class B>
struct flat_case {
  std::vector<float> gradient;
  bench_projector<B> projector;

  flat_case(index_t d, index_t k) : gradient(static_cast<std::size_t>(d)) {
    fill_random(gradient.data(), d, 1);
    projector.add_block("g", ogpsa::view(gradient));
    set_random_bases(projector, k, 2);
  }
  static std::string key(index_t d, index_t k) {
    return "flat/" + label<B>() + "/" + std::to_string(d) + "/" + std::to_string(k);
  }
  const auto& basis() const { return projector.subspace_of(block_id{0})->basis; }
  std::size_t bytes() const { return gradient.size() * sizeof(float) + basis().size() * sizeof(B); }
};

/// One matrix-side block: a column-major m x n float gradient G with a left basis U (m x k),
/// projected as G - U (U^T G).
struct matrix_case {
  std::vector<float> gradient;
  bench_projector<float> projector;

  matrix_case(index_t m, index_t n, index_t k) : gradient(static_cast<std::size_t>(m * n)) {
    fill_random(gradient.data(), m * n, 3);
    projector.add_block("w", matrix_view<float>(gradient.data(), {m, n}, {1, m}), family::left);
    set_random_bases(projector, k, 4);
  }
  static std::string key(index_t m, index_t n, index_t k) {
    return "matrix/" + std::to_string(m) + "x" + std::to_string(n) + "/" + std::to_string(k);
  }
  const auto& basis() const { return projector.subspace_of(block_id{0})->basis; }
  std::size_t bytes() const { return (gradient.size() + basis().size()) * sizeof(float); }
};

/// The benchmark decoder: every tensor its own flat block of one gradient buffer, rank k each.
template <class B>
struct model_case {
  std::vector<tensor_shape> tensors = decoder_tensors();
  std::vector<index_t> offsets;
  std::vector<float> gradient;
  bench_projector<B> projector;

  explicit model_case(index_t k) : gradient(static_cast<std::size_t>(total_size(tensors))) {
    fill_random(gradient.data(), total_size(tensors), 5);
    index_t offset = 0;
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      offsets.push_back(offset);
      projector.add_block("tensor" + std::to_string(i),
                          ogpsa::view(gradient.data() + offset, tensors[i].rows, tensors[i].cols));
      offset += tensors[i].size();
    }
    set_random_bases(projector, k, 6);
  }
  static std::string key(index_t k) { return "model/" + label<B>() + "/" + std::to_string(k); }
  const auto& basis(std::size_t i) const { return projector.subspace_of(block_id{i})->basis; }
  std::size_t bytes() const {
    std::size_t n = gradient.size() * sizeof(float);
    for (std::size_t i = 0; i < tensors.size(); ++i) n += basis(i).size() * sizeof(B);
    return n;
  }
};

/// Argument lists: every flat size with every rank; every matrix shape with every rank.
inline std::vector<std::vector<std::int64_t>> flat_args(index_t max_rank = 64) {
  std::vector<std::vector<std::int64_t>> args;
  for (index_t d : flat_sizes)
    for (index_t k : flat_ranks)
      if (k <= max_rank) args.push_back({d, k});
  return args;
}
inline std::vector<std::vector<std::int64_t>> matrix_args() {
  std::vector<std::vector<std::int64_t>> args;
  for (const auto& shape : matrix_shapes)
    for (index_t k : matrix_ranks) args.push_back({shape[0], shape[1], k});
  return args;
}
inline const std::vector<std::string> flat_arg_names{"d", "k"}, matrix_arg_names{"m", "n", "k"},
    model_arg_names{"k"};

}  // namespace ogpsa::bench
