"""Checkpoints: state_dict round trips through torch.load(weights_only=True), fp32 bases of bf16
parameters stay fp32, a resumed run in a fresh process is bit-identical to an uninterrupted one,
and the C++ checkpoint file."""

import io
import os
import subprocess
import sys
import tempfile
import unittest

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import resume  # noqa: E402
import support  # noqa: E402
from support import ogpsa  # noqa: E402

setUpModule = support.require_ogpsa


def saved_and_loaded(value, weights_only=True):
    buffer = io.BytesIO()
    torch.save(value, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=weights_only)


def reloaded(state_dict):
    """`state_dict` after torch.save and torch.load: its "ogpsa" entry with weights_only=True
    always; the inner optimizer's part too where this torch's restricted unpickler reads floats."""
    state_dict = dict(state_dict)
    entry = saved_and_loaded(state_dict.pop("ogpsa"))
    loaded = saved_and_loaded(state_dict, weights_only=support.WEIGHTS_ONLY_READS_FLOATS)
    loaded["ogpsa"] = entry
    return loaded


def assert_same(test, a, b, where="state"):
    """Equal nested dicts/lists of tensors and plain values, tensors bit for bit and of one dtype."""
    if isinstance(a, torch.Tensor):
        test.assertEqual(a.dtype, b.dtype, where)
        test.assertTrue(torch.equal(a, b), where)
    elif isinstance(a, dict):
        test.assertEqual(set(a), set(b), where)
        for key in a:
            assert_same(test, a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        test.assertEqual(len(a), len(b), where)
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(test, x, y, f"{where}[{i}]")
    else:
        test.assertEqual(a, b, where)


class StateDict(unittest.TestCase):
    def test_round_trip(self):
        model, opt = resume.build()
        resume.train(model, opt, range(3))
        state = opt.state_dict()
        self.assertIn("ogpsa", state)
        twin_model, twin = resume.build()
        twin_model.load_state_dict(model.state_dict())
        twin.load_state_dict(reloaded(state))
        assert_same(self, twin.state_dict(), state)
        for name in opt.names:
            self.assertTrue(torch.equal(twin.basis(name), opt.basis(name)), name)
        self.assertIs(twin.state, twin.inner.state)
        self.assertIs(twin.param_groups, twin.inner.param_groups)
        resume.train(model, opt, range(3, 5))
        resume.train(twin_model, twin, range(3, 5))
        for p, q in zip(model.parameters(), twin_model.parameters()):
            self.assertTrue(torch.equal(p, q))

    def test_the_state_dict_loads_with_weights_only(self):
        model, opt = resume.build()
        resume.train(model, opt, range(3))
        state = opt.state_dict()
        assert_same(self, saved_and_loaded(state["ogpsa"]), state["ogpsa"])  # no float, no object
        if not support.WEIGHTS_ONLY_READS_FLOATS:
            self.skipTest(f"torch {torch.__version__}'s weights-only unpickler reads no float, so no "
                          "optimizer's param groups (lr, betas) load with weights_only=True on it")
        assert_same(self, saved_and_loaded(state), state)

    def test_fp32_bases_of_bf16_parameters_stay_fp32(self):
        torch.manual_seed(0)
        model = torch.nn.Linear(6, 5).to(torch.bfloat16)
        x = torch.randn(4, 6, dtype=torch.bfloat16)
        opt = ogpsa.ProjectedOptimizer(model.named_parameters(), torch.optim.AdamW, lr=1e-2,
                                       estimator="exact_svd", rank=2, basis_dtype="float32")
        opt.set_reference(lambda pass_: [pass_.feed(model(x[i:i + 2]).float().square().mean()) for i in (0, 2)])
        model(x).float().sum().backward()
        opt.step()
        state = reloaded(opt.state_dict())
        twin_model = torch.nn.Linear(6, 5).to(torch.bfloat16)
        twin = ogpsa.ProjectedOptimizer(twin_model.named_parameters(), torch.optim.AdamW, lr=1e-2,
                                        estimator="exact_svd", rank=2, basis_dtype="float32")
        twin.load_state_dict(state)
        for name in opt.names:
            self.assertEqual(twin.basis(name).dtype, torch.float32, name)
            self.assertTrue(torch.equal(twin.basis(name), opt.basis(name)), name)
        self.assertEqual(twin.state[twin_model.weight]["exp_avg"].dtype, torch.bfloat16)  # torch's own rule

    def test_a_state_dict_without_ogpsa_is_refused(self):
        model, opt = resume.build()
        with self.assertRaisesRegex(ValueError, "'ogpsa'"):
            opt.load_state_dict(torch.optim.AdamW(model.parameters()).state_dict())

    def test_another_models_state_is_refused_and_changes_nothing(self):
        model, opt = resume.build()
        resume.train(model, opt, range(2))
        before = opt.state_dict()
        other = torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.Tanh(), torch.nn.Linear(12, 4))
        other_opt = ogpsa.ProjectedOptimizer(other.named_parameters(), torch.optim.AdamW, lr=1e-2,
                                             estimator="exact_svd", rank=2, family="right")
        other_opt.set_reference(lambda pass_: pass_.feed(other(torch.randn(3, 6)).sum()))
        other(torch.randn(3, 6)).sum().backward()
        other_opt.step()
        with self.assertRaises(ValueError):  # same names, other shapes: C++ refuses the extents
            opt.load_state_dict(other_opt.state_dict())
        assert_same(self, opt.state_dict(), before)
        renamed = torch.nn.Linear(6, 4)
        renamed_opt = ogpsa.ProjectedOptimizer([("fc.weight", renamed.weight)], torch.optim.AdamW)
        with self.assertRaisesRegex(ValueError, "fc.weight"):
            opt.load_state_dict(renamed_opt.state_dict())


class Resume(unittest.TestCase):
    def test_a_fresh_process_resumes_bit_for_bit(self):
        straight, straight_opt = resume.build()
        resume.train(straight, straight_opt, range(resume.STEPS))
        model, opt = resume.build()
        resume.train(model, opt, range(resume.SAVED_AT))
        with tempfile.TemporaryDirectory() as folder:
            checkpoint = os.path.join(folder, "checkpoint.pt")
            output = os.path.join(folder, "resumed.pt")
            resume.save(checkpoint, model, opt)
            run = subprocess.run([sys.executable, resume.__file__, checkpoint, output],
                                 capture_output=True, text=True, timeout=300)
            self.assertEqual(run.returncode, 0, run.stderr)
            resumed = torch.load(output, weights_only=True)
        for name, p in straight.state_dict().items():
            self.assertTrue(torch.equal(resumed[name], p), name)
        self.assertFalse(torch.equal(resumed["0.weight"], model.state_dict()["0.weight"]))  # it did step


class CheckpointFile(unittest.TestCase):
    def setUp(self):
        if not support.has_operator("save"):
            raise unittest.SkipTest("this build of the extension has no save/load operators")

    def test_save_and_load_round_trip(self):
        model, opt = resume.build()
        resume.train(model, opt, range(3))
        twin_model, twin = resume.build()
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "ogpsa.safetensors")
            opt.save_ogpsa(path)
            twin.load_ogpsa(path)
            with self.assertRaisesRegex(ValueError, "2 paths"):
                groups = [{"params": [model[0].weight]}, {"params": [model[2].weight], "ogpsa_rank": 1}]
                ogpsa.ProjectedOptimizer(groups, estimator="exact_svd", rank=2).save_ogpsa(path)
        assert_same(self, twin.state_dict()["ogpsa"]["projectors"], opt.state_dict()["ogpsa"]["projectors"])


if __name__ == "__main__":
    unittest.main()
