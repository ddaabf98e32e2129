"""One rank of the data-parallel test in test_distributed.py.

Run as ``python distributed_worker.py RANK WORLD RENDEZVOUS AVERAGE OUTPUT``: joins a Gloo group
on loopback through the rendezvous file (no port to pick, so none to collide), trains a DDP model
whose reference and training data differ per rank, and saves its bases (after the first step and
at the end) and parameters to OUTPUT.
"""

import datetime
import sys

import torch
import torch.distributed as dist

import support
from support import ogpsa

STEPS = 6
SETTINGS = dict(estimator="exact_svd", rank=2, family="right", refresh_every=2, placement="update")


def model():
    torch.manual_seed(0)  # every rank starts from the same weights, as DDP requires
    return torch.nn.Sequential(torch.nn.Linear(6, 10), torch.nn.Tanh(), torch.nn.Linear(10, 3))


def data(rank, batches, seed):
    """This rank's own batches."""
    generator = torch.Generator().manual_seed(seed + 1000 * rank)
    return [(torch.randn(5, 6, generator=generator), torch.randn(5, 3, generator=generator)) for _ in range(batches)]


def reference_data(rank):
    return data(rank, 3, seed=1)


def loss(module, batch):
    x, y = batch
    return torch.nn.functional.mse_loss(module(x), y)


def main(rank, world, rendezvous, average, output):
    support.require_ogpsa()
    rank, world = int(rank), int(world)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=120))
    net = model()
    ddp = torch.nn.parallel.DistributedDataParallel(net)
    opt = ogpsa.ProjectedOptimizer(net.named_parameters(), torch.optim.AdamW, lr=1e-2,
                                   average_reference=average == "1", **SETTINGS)
    general = reference_data(rank)
    # the reference forward runs on the module under DDP: DDP would wait for a backward() after it
    opt.set_reference(lambda pass_: [pass_.feed(loss(net, batch)) for batch in general])
    safety = data(rank, STEPS, seed=2)
    first = None
    for step in range(STEPS):
        opt.zero_grad()
        loss(ddp, safety[step]).backward()  # DDP averages the training gradients
        opt.step()
        if first is None:
            first = {name: opt.basis(name) for name in opt.names}
    torch.save({"first": first, "bases": {name: opt.basis(name) for name in opt.names},
                "parameters": {name: p.detach().clone() for name, p in net.named_parameters()}}, output)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:])
