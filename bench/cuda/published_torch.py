#!/usr/bin/env python3
"""The published OGPSA procedure with PyTorch on the GPU: the peer ogpsa's CUDA backend is compared to.

The published training code keeps each parameter tensor's reference direction in host memory and,
for every tensor at every step, copies it to the GPU and removes the gradient's component along
it in the gradient's dtype (include/ogpsa/PUBLISHED.md):  g <- g - (g.b / (b.b + 1e-8)) b.

This reproduces that loop over the tensors of a LLaMA-style decoder (the shapes of
bench/cuda/models.hpp) and times one optimizer step's projection, with the host directions in
pageable memory (as the published code leaves them) and, for reference, in pinned memory.

Writes a JSON list of results to the path given as the first argument.
"""
import json
import sys
import time

import torch

DECODERS = {
    # name: (layers, hidden, intermediate, kv, vocab, tied) -- keep in sync with models.hpp
    "100M": (12, 768, 2048, 768, 32000, True),
    "1B": (22, 2048, 5632, 256, 32000, False),
}


def tensor_shapes(name):
    layers, hidden, intermediate, kv, vocab, tied = DECODERS[name]
    shapes = [(vocab, hidden)]
    for _ in range(layers):
        shapes += [(hidden,), (hidden, hidden), (kv, hidden), (kv, hidden), (hidden, hidden), (hidden,),
                   (intermediate, hidden), (intermediate, hidden), (hidden, intermediate)]
    shapes.append((hidden,))
    if not tied:
        shapes.append((vocab, hidden))
    return shapes


def published_step(gradients, directions, device):
    """One step of the published projection: per tensor, copy the direction in and project."""
    for g, b_host in zip(gradients, directions):
        b = b_host.to(device, non_blocking=False)
        coefficient = torch.dot(g.view(-1), b.view(-1)) / (torch.dot(b.view(-1), b.view(-1)) + 1e-8)
        g.sub_(coefficient * b)


def time_steps(gradients, directions, device, steps):
    published_step(gradients, directions, device)  # warm-up
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        published_step(gradients, directions, device)
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main():
    out = sys.argv[1]
    device = torch.device("cuda")
    dtype = torch.bfloat16
    results = []
    for name in ("100M", "1B"):
        shapes = tensor_shapes(name)
        parameters = sum(torch.Size(s).numel() for s in shapes)
        torch.manual_seed(0)
        gradients = [torch.randn(s, device=device, dtype=dtype) for s in shapes]
        directions = []  # unit directions in host memory, made on the device (faster) and copied out
        for s in shapes:
            b = torch.randn(s, device=device, dtype=torch.float32)
            directions.append((b / (b.norm() + 1e-10)).to(dtype).cpu())
        pageable = time_steps(gradients, directions, device, steps=3)
        pinned_directions = [b.pin_memory() for b in directions]
        pinned = time_steps(gradients, pinned_directions, device, steps=3)
        del pinned_directions
        results.append({
            "model": name,
            "parameters": parameters,
            "tensors": len(shapes),
            "dtype": "bfloat16",
            "rank": 1,
            "seconds_per_step_pageable": pageable,
            "seconds_per_step_pinned": pinned,
            "device": torch.cuda.get_device_name(0),
            "torch": torch.__version__,
        })
        print(f"published procedure, {name} ({parameters / 1e9:.3f}B parameters, {len(shapes)} tensors, bf16): "
              f"{pageable * 1e3:.1f} ms/step with pageable host directions, {pinned * 1e3:.1f} ms/step pinned",
              flush=True)
        del gradients, directions
        torch.cuda.empty_cache()
    with open(out, "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
