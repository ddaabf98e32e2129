"""Data-parallel training: two processes (Gloo on loopback) with a DDP model and different
reference data per rank end with identical bases and parameters, because reference gradients are
averaged across ranks before they are fed; without the averaging they diverge."""

import os
import subprocess
import sys
import tempfile
import time
import unittest

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import distributed_worker as worker  # noqa: E402
import support  # noqa: E402
from support import ogpsa  # noqa: E402

setUpModule = support.require_ogpsa

WORLD = 2


def run(average):
    """Runs the worker on WORLD ranks; returns what each rank saved. A rank that fails stops the
    others, and the output of the failed ranks is in the error."""
    environment = dict(os.environ, GLOO_SOCKET_IFNAME="lo")
    with tempfile.TemporaryDirectory() as folder:
        outputs = [os.path.join(folder, f"rank{rank}.pt") for rank in range(WORLD)]
        logs = [os.path.join(folder, f"rank{rank}.log") for rank in range(WORLD)]
        ranks = []
        for rank in range(WORLD):
            with open(logs[rank], "w") as log:
                ranks.append(subprocess.Popen(
                    [sys.executable, worker.__file__, str(rank), str(WORLD), os.path.join(folder, "rendezvous"),
                     "1" if average else "0", outputs[rank]], env=environment, stdout=log, stderr=subprocess.STDOUT))
        try:
            failed = wait_all(ranks, deadline=time.monotonic() + 300)
        finally:
            for process in ranks:
                process.kill()
                process.wait()
        if failed:
            raise AssertionError("\n".join(f"rank {rank} (exit code {ranks[rank].returncode}):\n"
                                           f"{open(logs[rank]).read()}" for rank in failed))
        return [torch.load(output) for output in outputs]


def wait_all(processes, deadline):
    """Waits for every process; returns the indices of those that failed (all of the unfinished
    ones when the deadline passes), as soon as one fails."""
    while time.monotonic() < deadline:
        codes = [process.poll() for process in processes]
        failed = [index for index, code in enumerate(codes) if code not in (None, 0)]
        if failed or all(code == 0 for code in codes):
            return failed
        time.sleep(0.05)
    return [index for index, process in enumerate(processes) if process.poll() is None]


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
