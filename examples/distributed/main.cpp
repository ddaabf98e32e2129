// Distributed safety fine-tuning with ogpsa over c10d (Gloo on 127.0.0.1): N processes train the
// LibTorch example's model data-parallel, each on its slice of every batch, in two shardings:
//   (a) replicated (DDP): gradients all-reduced, every block whole on every rank; the projection
//       adds no communication;
//   (b) sharded gradients (FSDP/ZeRO-style): each rank keeps only its rows of every gradient and
//       of every basis; biases (flat blocks) need their coefficients summed, one collective per
//       step for all of them; weights (family right, rows split) need none.
// Every rank also runs the single-process computation on the whole batch and checks that its
// projected gradients (or its rows of them) match it.
//
//   ogpsa_distributed_example [ranks = 2]
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/torch.h>

#include <ogpsa/torch.hpp>
#include <ogpsa/torch/c10d_reducer.hpp>

namespace {

constexpr int steps = 20, batch = 64;

template <class Reducer>
using projector = ogpsa::projector<ogpsa::exact_svd, ogpsa::orthogonal, ogpsa::fixed_basis, ogpsa::storage<float>, Reducer>;

struct data {
  torch::Tensor general_x, general_y, safety_x, safety_y;
};

data make_data() {
  torch::manual_seed(1);
  return {torch::randn({batch, 16}), torch::randn({batch, 8}), torch::randn({batch, 16}), torch::randn({batch, 8})};
}

torch::nn::Sequential make_model() {
  torch::manual_seed(0);
  return torch::nn::Sequential(torch::nn::Linear(16, 32), torch::nn::Tanh(), torch::nn::Linear(32, 8));
}

/// Gradients of the mse loss on rows [first, end) of (x, y), scaled by their share of the batch so
/// that the ranks' gradients sum to the whole batch's.
std::vector<torch::Tensor> gradients(torch::nn::Sequential& model, const torch::Tensor& x, const torch::Tensor& y,
                                     int64_t first, int64_t end) {
  model->zero_grad();
  const double share = static_cast<double>(end - first) / static_cast<double>(x.size(0));
  (torch::mse_loss(model->forward(x.slice(0, first, end)), y.slice(0, first, end)) * share).backward();
  std::vector<torch::Tensor> out;
  for (auto& p : model->parameters()) out.push_back(p.grad().clone());
  return out;
}

/// Rows [first, end) of dimension 0 owned by `rank`.
std::pair<int64_t, int64_t> rows_of(int64_t n, int rank, int ranks) { return {n * rank / ranks, n * (rank + 1) / ranks}; }

ogpsa::family family_of(const torch::Tensor& t) { return t.dim() >= 2 ? ogpsa::family::right : ogpsa::family::flat; }

/// Registers `buffers` (whole or sharded gradients) as blocks, feeds the matching pieces of the
/// reference gradients (one per reference batch) and estimates the bases.
template <class Reducer>
void set_up(projector<Reducer>& p, std::vector<torch::Tensor>& buffers, const std::vector<std::vector<torch::Tensor>>& refs,
            ogpsa::sharding sharded_by) {
  std::vector<ogpsa::block_id> ids;
  for (std::size_t i = 0; i < buffers.size(); ++i)
    ids.push_back(buffers[i].dim() >= 2
                      ? p.add_block("p" + std::to_string(i), ogpsa::torch::matricized_view<float>(buffers[i]), family_of(buffers[i]), sharded_by)
                      : p.add_block("p" + std::to_string(i), ogpsa::torch::flat_view<float>(buffers[i]), family_of(buffers[i]), sharded_by));
  p.begin_reference_pass();
  for (const auto& ref : refs)
    for (std::size_t i = 0; i < ref.size(); ++i)
      if (ref[i].dim() >= 2) p.feed(ids[i], ogpsa::torch::matricized_view<float>(ref[i]));
      else p.feed(ids[i], ogpsa::torch::flat_view<float>(ref[i]));
  p.finish_reference_pass();
}

/// This rank's rows of every tensor (a copy: the rank's shard).
std::vector<torch::Tensor> shard(const std::vector<torch::Tensor>& ts, int rank, int ranks) {
  std::vector<torch::Tensor> out;
  for (const auto& t : ts) {
    const auto [first, end] = rows_of(t.size(0), rank, ranks);
    out.push_back(t.slice(0, first, end).clone());
  }
  return out;
}

struct result {
  double max_difference = 0;
};

/// Trains `steps` steps of projected SGD, data-parallel over `group` with every block sharded by
/// `sharded_by`, and alongside it the single-process reference; returns
/// the largest difference between the projected gradients.
result train(c10::intrusive_ptr<c10d::ProcessGroup> group, ogpsa::sharding sharded_by) {
  const int rank = group->getRank(), ranks = group->getSize();
  const data d = make_data();
  auto model = make_model(), single = make_model();
  ogpsa::torch::c10d_reducer reducer(group, std::chrono::seconds(30));
  auto all_reduce = [&](std::vector<torch::Tensor>& ts) {
    for (auto& t : ts) reducer.sum(std::span<float>(t.data_ptr<float>(), static_cast<std::size_t>(t.numel())));
  };
  const auto [first, end] = rows_of(batch, rank, ranks);

  // Reference gradients: the capability objective on four batches, each rank on its slice of each
  // batch; summed across ranks so that every rank estimates from the same (whole-batch) data.
  std::vector<std::vector<torch::Tensor>> refs, single_refs;
  for (int64_t b = 0; b < batch; b += 16) {
    const torch::Tensor x = d.general_x.slice(0, b, b + 16), y = d.general_y.slice(0, b, b + 16);
    const auto [f, e] = rows_of(16, rank, ranks);
    refs.push_back(gradients(model, x, y, f, e));
    all_reduce(refs.back());
    single_refs.push_back(gradients(single, x, y, 0, 16));
  }
  std::vector<torch::Tensor> buffers, single_buffers;
  for (auto& p : model->parameters()) {
    const auto [f, e] = rows_of(p.size(0), rank, ranks);
    buffers.push_back(torch::zeros_like(sharded_by == ogpsa::sharding::replicated ? p : p.slice(0, f, e)));
    single_buffers.push_back(torch::zeros_like(p));
  }
  projector<ogpsa::torch::c10d_reducer> p(ogpsa::exact_svd{.rank = 3}, {}, {}, {}, reducer);
  projector<ogpsa::local_reducer> reference(ogpsa::exact_svd{.rank = 3});
  set_up(p, buffers, sharded_by == ogpsa::sharding::replicated ? refs : [&] {
    std::vector<std::vector<torch::Tensor>> pieces;
    for (const auto& r : refs) pieces.push_back(shard(r, rank, ranks));
    return pieces;
  }(), sharded_by);
  set_up(reference, single_buffers, single_refs, ogpsa::sharding::replicated);

  result out;
  for (int step = 0; step < steps; ++step) {
    std::vector<torch::Tensor> g = gradients(model, d.safety_x, d.safety_y, first, end);
    all_reduce(g);  // DDP's gradient all-reduce (FSDP would reduce-scatter: each rank its rows)
    const std::vector<torch::Tensor> mine = sharded_by == ogpsa::sharding::replicated ? g : shard(g, rank, ranks);
    for (std::size_t i = 0; i < buffers.size(); ++i) buffers[i].copy_(mine[i]);
    p.project();
    const auto whole = gradients(single, d.safety_x, d.safety_y, 0, batch);
    for (std::size_t i = 0; i < whole.size(); ++i) single_buffers[i].copy_(whole[i]);
    reference.project();
    const std::vector<torch::Tensor> expected =
        sharded_by == ogpsa::sharding::replicated ? single_buffers : shard(single_buffers, rank, ranks);
    for (std::size_t i = 0; i < buffers.size(); ++i)
      out.max_difference = std::max(out.max_difference, (buffers[i] - expected[i]).abs().max().item<double>());
    // SGD on the projected gradient; a sharded run all-gathers the rows (here: a sum of
    // zero-padded shards) so that every rank's replica of the model moves identically.
    torch::NoGradGuard no_grad;
    auto params = model->parameters(), single_params = single->parameters();
    for (std::size_t i = 0; i < params.size(); ++i) {
      torch::Tensor full = buffers[i];
      if (sharded_by != ogpsa::sharding::replicated) {
        full = torch::zeros_like(params[i]);
        const auto [f, e] = rows_of(params[i].size(0), rank, ranks);
        full.slice(0, f, e).copy_(buffers[i]);
        reducer.sum(std::span<float>(full.data_ptr<float>(), static_cast<std::size_t>(full.numel())));
      }
      params[i].sub_(0.05 * full);
      single_params[i].sub_(0.05 * single_buffers[i]);
    }
  }
  return out;
}

int run_rank(const std::string& store_file, int rank, int ranks) {
  auto store = c10::make_intrusive<c10d::FileStore>(store_file, ranks);
  auto options = c10d::ProcessGroupGloo::Options::create(std::chrono::seconds(30));
  options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  auto group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, ranks, options);
  bool ok = true;
  for (auto sharded_by : {ogpsa::sharding::replicated, ogpsa::sharding::rows}) {
    const result r = train(group, sharded_by);
    ok = ok && r.max_difference < 1e-5;
    if (rank == 0)
      std::printf("%d ranks, %-10s gradients: projected gradients match the single-process run over %d steps "
                  "(max |difference| %.2e): %s\n",
                  ranks, std::string(ogpsa::to_string(sharded_by)).c_str(), steps, r.max_difference, ok ? "yes" : "NO");
    else if (r.max_difference >= 1e-5)
      std::printf("rank %d, %s: max |difference| %.2e\n", rank, std::string(ogpsa::to_string(sharded_by)).c_str(),
                  r.max_difference);
  }
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const int ranks = argc > 1 ? std::atoi(argv[1]) : 2;
  if (ranks < 1 || ranks > 64) {
    std::fprintf(stderr, "usage: %s [ranks in 1..64]\n", argv[0]);
    return 2;
  }
  char folder[] = "/tmp/ogpsa-distributed-XXXXXX";
  if (::mkdtemp(folder) == nullptr) return 2;
  const std::string store_file = std::string(folder) + "/store";
  std::vector<pid_t> children;
  std::fflush(nullptr);
  for (int rank = 0; rank < ranks; ++rank) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      // As Python does: a write to a dead peer's socket then fails, and Gloo reports it, instead of
      // SIGPIPE killing this rank.
      std::signal(SIGPIPE, SIG_IGN);
      int status = 1;
      try {
        status = run_rank(store_file, rank, ranks);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "rank %d: %s\n", rank, e.what());
      }
      std::fflush(nullptr);
      ::_exit(status);
    }
    children.push_back(pid);
  }
  int failed = 0;
  for (pid_t pid : children) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    failed += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  std::filesystem::remove_all(folder);
  return failed == 0 ? 0 : 1;
}
