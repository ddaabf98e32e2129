"""Data-parallel training: two processes (Gloo on loopback) with a DDP model and different
reference data per rank end with identical bases and parameters, because reference gradients are
averaged across ranks before they are fed; without the averaging they diverge."""

import os
import socket
import subprocess
import sys
import tempfile
import unittest

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import distributed_worker as worker  # noqa: E402
import support  # noqa: E402
from support import ogpsa  # noqa: E402

setUpModule = support.require_ogpsa

WORLD = 2


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(average):
    """Runs the worker on WORLD ranks; returns what each rank saved."""
    environment = dict(os.environ, GLOO_SOCKET_IFNAME="lo")
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        outputs = [os.path.join(folder, f"rank{rank}.pt") for rank in range(WORLD)]
        ranks = [subprocess.Popen([sys.executable, worker.__file__, str(rank), str(WORLD), str(port),
                                   "1" if average else "0", outputs[rank]], env=environment,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for rank in range(WORLD)]
        logs = []
        for process in ranks:
            try:
                logs.append(process.communicate(timeout=300)[0])
            except subprocess.TimeoutExpired:
                for other in ranks:
                    other.kill()
                raise
        for rank, process in enumerate(ranks):
            if process.returncode != 0:
                raise AssertionError(f"rank {rank} exited with {process.returncode}:\n{logs[rank]}")
        return [torch.load(output) for output in outputs]


def identical(a, b):
    return all(torch.equal(a[name], b[name]) for name in a)


class DataParallel(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.averaged = run(average=True)

    def test_ranks_end_with_identical_bases_and_parameters(self):
        ranks = self.averaged
        self.assertTrue(identical(ranks[0]["bases"], ranks[1]["bases"]))
        self.assertTrue(identical(ranks[0]["parameters"], ranks[1]["parameters"]))
        self.assertEqual(ranks[0]["bases"]["0.weight"].shape, (2, 6))

    def test_the_bases_are_those_of_the_averaged_reference_gradients(self):
        first = self.averaged[0]["first"]
        # one process, at the initial weights: sample b is the mean of every rank's sample b
        net = worker.model()
        opt = ogpsa.ProjectedOptimizer(net.named_parameters(), torch.optim.AdamW, lr=1e-2, **worker.SETTINGS)
        names = [name for name, _ in net.named_parameters()]
        with opt.reference_pass() as pass_:
            for batches in zip(*(worker.reference_data(rank) for rank in range(WORLD))):
                gradients = [torch.autograd.grad(worker.loss(net, batch), list(net.parameters())) for batch in batches]
                pass_.feed_gradients({name: sum(g[i] for g in gradients) / WORLD for i, name in enumerate(names)})
        for name in names:
            self.assertTrue(support.same_subspace(first[name].T, opt.basis(name).T, 1e-5), name)

    def test_without_averaging_the_ranks_diverge(self):
        ranks = run(average=False)
        self.assertFalse(identical(ranks[0]["bases"], ranks[1]["bases"]))
        self.assertFalse(identical(ranks[0]["parameters"], ranks[1]["parameters"]))


if __name__ == "__main__":
    unittest.main()
