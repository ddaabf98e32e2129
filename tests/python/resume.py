"""A deterministic training run, for the resume test in test_state.py.

Run as ``python resume.py CHECKPOINT OUTPUT``, a fresh process loads a checkpoint written after
`SAVED_AT` steps, takes the remaining steps and saves the model's parameters to OUTPUT.
"""

import sys

import torch

import support
from support import ogpsa

STEPS = 6
SAVED_AT = 3


def build():
    """The model and its optimizer: AdamW with update-space projection, right blocks of rank 2
    refreshed every 2 steps, so that a refresh happens after the resume."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 10), torch.nn.Tanh(), torch.nn.Linear(10, 4))
    opt = ogpsa.ProjectedOptimizer(model.named_parameters(), torch.optim.AdamW, lr=1e-2,
                                   estimator="exact_svd", rank=2, family="right", refresh_every=2,
                                   placement="update")
    generator = torch.Generator().manual_seed(1)
    general = [(torch.randn(5, 6, generator=generator), torch.randn(5, 4, generator=generator)) for _ in range(3)]
    opt.set_reference(lambda pass_: [pass_.feed(loss(model, batch)) for batch in general])
    return model, opt


def loss(model, batch):
    x, y = batch
    return torch.nn.functional.mse_loss(model(x), y)


def train(model, opt, steps):
    """Takes the steps numbered `steps`; step i's batch depends on i only."""
    for step in steps:
        generator = torch.Generator().manual_seed(100 + step)
        opt.zero_grad()
        loss(model, (torch.randn(8, 6, generator=generator), torch.randn(8, 4, generator=generator))).backward()
        opt.step()


def save(path, model, opt):
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, path)


def load(path, model, opt):
    checkpoint = torch.load(path, weights_only=support.WEIGHTS_ONLY_READS_FLOATS)
    model.load_state_dict(checkpoint["model"])
    opt.load_state_dict(checkpoint["optimizer"])


def main(checkpoint, output):
    support.require_ogpsa()
    model, opt = build()
    load(checkpoint, model, opt)
    train(model, opt, range(SAVED_AT, STEPS))
    torch.save(model.state_dict(), output)


if __name__ == "__main__":
    main(*sys.argv[1:])
