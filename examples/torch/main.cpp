// The README's LibTorch example: safety fine-tuning whose steps stay out of a capability subspace.
#include <cstdio>

#include <torch/torch.h>

#include <ogpsa/torch.hpp>

int main() {
  torch::manual_seed(0);
  torch::nn::Sequential model(torch::nn::Linear(16, 32), torch::nn::Tanh(), torch::nn::Linear(32, 8));
  const torch::Tensor general_x = torch::randn({64, 16}), general_y = torch::randn({64, 8});  // capabilities
  const torch::Tensor safety_x = torch::randn({64, 16}), safety_y = torch::randn({64, 8});    // safety data
  auto loss = [&](const torch::Tensor& x, const torch::Tensor& y) {
    return torch::mse_loss(model->forward(x), y);
  };
  const float general_before = loss(general_x, general_y).item<float>();

  torch::optim::AdamW adamw(model->parameters(), torch::optim::AdamWOptions(1e-3));
  ogpsa::torch::projected_optimizer opt(
      adamw, model->named_parameters(),
      [&](ogpsa::torch::reference_pass& pass) {  // the capability objective: one sample per batch
        for (int b = 0; b < 64; b += 16)
          pass.feed(loss(general_x.slice(0, b, b + 16), general_y.slice(0, b, b + 16)));
      },
      ogpsa::projector<ogpsa::exact_svd>(ogpsa::exact_svd{.rank = 4}, {}, ogpsa::every_n_steps{10}),
      {.where = ogpsa::torch::placement::update});  // project the step AdamW takes, not only the gradient

  for (int step = 0; step < 100; ++step) {
    adamw.zero_grad();
    loss(safety_x, safety_y).backward();
    opt.project();  // refreshes the subspace when due (and projects .grad() under placement::gradient)
    torch::nn::utils::clip_grad_norm_(model->parameters(), 1.0);
    opt.step();
  }

  torch::serialize::OutputArchive checkpoint;  // the projector's state rides along with the model's
  model->save(checkpoint);
  opt.save(checkpoint);
  checkpoint.save_to("ogpsa_torch_example.pt");
  std::printf("capability loss %.4f -> %.4f, safety loss %.4f, %zu refreshes\n", general_before,
              loss(general_x, general_y).item<float>(), loss(safety_x, safety_y).item<float>(),
              opt.projector().refreshes());
}
