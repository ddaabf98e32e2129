#include "doctest_after_glog.hpp"  // first: see there

#include <torch/types.h>

#include <ogpsa/torch/tensor_view.hpp>

#include "support.hpp"

namespace t = ogpsa::test;
namespace ot = ogpsa::torch;

TEST_CASE("the element and device mappings are LibTorch's") {
  // Double parentheses: doctest cannot print c10's enums, so the comparison is not decomposed.
  CHECK((ot::scalar_type_of<float> == torch::kFloat));
  CHECK((ot::scalar_type_of<const double> == torch::kDouble));
  CHECK((ot::scalar_type_of<ogpsa::bfloat16> == torch::kBFloat16));
  CHECK((ot::scalar_type_of<ogpsa::float16> == torch::kHalf));
  CHECK((ot::device_type_of<ogpsa::host_memory_tag> == torch::kCPU));
  CHECK((ot::device_type_of<ogpsa::cuda_memory_tag> == torch::kCUDA));
  CHECK_FALSE(ot::torch_element<int>);
}

TEST_CASE("a view aliases the tensor with its sizes and strides") {
  torch::Tensor a = torch::arange(12, torch::kFloat).reshape({3, 4});
  const auto v = ot::view<float, 2>(a);
  CHECK(v.data_handle() == a.data_ptr<float>());
  CHECK(v.extent(0) == 3);
  CHECK(v.extent(1) == 4);
  CHECK(v.stride(0) == 4);
  CHECK(v.stride(1) == 1);
  v.data_handle()[5] = -1.0f;
  CHECK(a[1][1].item<float>() == -1.0f);

  const torch::Tensor at = a.t();  // a transposed view: strides (1, 4)
  const auto vt = ot::view<const float, 2>(at);
  CHECK(vt.stride(0) == 1);
  CHECK(vt.stride(1) == 4);
  CHECK(vt.is_exhaustive());  // dense, in another order
}

TEST_CASE("bfloat16 and float16 views are bit-compatible with LibTorch's halves") {
  torch::Tensor b = torch::zeros({4}, torch::kBFloat16);
  ot::flat_view<ogpsa::bfloat16>(b).data_handle()[2] = ogpsa::bfloat16(1.5f);
  CHECK(b[2].item<float>() == 1.5f);
  torch::Tensor h = torch::full({2, 2}, 0.25, torch::kHalf);
  CHECK(static_cast<float>(ot::view<const ogpsa::float16, 2>(h).data_handle()[3]) == 0.25f);
}

TEST_CASE("a flat view covers every element in row-major order") {
  torch::Tensor c = torch::randn({2, 3, 4});
  const auto v = ot::flat_view<float>(c);
  CHECK(v.extent(0) == 24);
  CHECK(v.data_handle()[23] == c[1][2][3].item<float>());
  CHECK(ot::flat_view<float>(torch::tensor(3.0f)).extent(0) == 1);  // a scalar is one element
}

TEST_CASE("matricized views: one row per index of the first dimension") {
  const auto conv = ot::matricized_view<float>(torch::zeros({8, 3, 5, 5}));
  CHECK(conv.extent(0) == 8);
  CHECK(conv.extent(1) == 75);
  CHECK(conv.stride(0) == 75);
  const auto bias = ot::matricized_view<float>(torch::zeros({6}));
  CHECK(bias.extent(0) == 6);
  CHECK(bias.extent(1) == 1);
  CHECK(bias.is_exhaustive());
  const auto scalar = ot::matricized_view<float>(torch::tensor(2.0f));
  CHECK(scalar.extent(0) == 1);
  CHECK(scalar.extent(1) == 1);
  torch::Tensor w = torch::zeros({5, 7});
  const auto transposed = ot::matricized_view<float>(w.t());
  CHECK(transposed.extent(0) == 7);
  CHECK(transposed.stride(0) == 1);
  CHECK(transposed.stride(1) == 7);
}

TEST_CASE("tensors that cannot be viewed are clear errors") {
  const torch::Tensor d = torch::zeros({3}, torch::kDouble);
  t::check_throws_with<ogpsa::invalid_argument>([&] { (void)ot::view<float, 1>(d); },
                                                {"ogpsa::torch::view()", "Double", "float"});
  t::check_throws_with<ogpsa::invalid_argument>([] { (void)ot::flat_view<float>(torch::Tensor()); },
                                                {"ogpsa::torch::flat_view()", "undefined"});
  t::check_throws_with<ogpsa::invalid_argument>(
      [] { (void)ot::view<float, 1, ogpsa::cuda_memory_tag>(torch::zeros({3})); },
      {"ogpsa::torch::view()", "device cpu", "cuda device"});
  t::check_throws_with<ogpsa::shape_error>(
      [] {
        (void)ot::view<float, 2>(torch::zeros({2, 3, 4}));
      },
      {"ogpsa::torch::view()", "2-dimensional", "3 dimensions"});
  const torch::Tensor strided = torch::zeros({4, 6}).slice(1, 0, 6, 2);
  t::check_throws_with<ogpsa::layout_error>(
      [&] { (void)ot::flat_view<float>(strided); },
      {"ogpsa::torch::flat_view()", "contiguous", "sizes [4, 3], strides [6, 2]"});
  const torch::Tensor permuted = torch::zeros({2, 3, 4}).permute({2, 0, 1});
  t::check_throws_with<ogpsa::layout_error>([&] { (void)ot::matricized_view<float>(permuted); },
                                            {"ogpsa::torch::matricized_view()", "3 dimensions", "[4, 2, 3]"});
  const torch::Tensor sparse = torch::zeros({3, 3}).to_sparse();
  t::check_throws_with<ogpsa::layout_error>([&] { (void)ot::view<float, 2>(sparse); },
                                            {"ogpsa::torch::view()", "Sparse"});
}
