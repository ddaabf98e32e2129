"""ProjectedOptimizer as a torch.optim.Optimizer: param groups with their own settings, exclusion,
the four placements, AdamW and SGD, LR schedulers, GradScaler, zero_grad, add_param_group,
diagnostics, and reference passes that leave .grad alone."""

import os
import sys
import unittest

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import ogpsa, vec  # noqa: E402

setUpModule = support.require_ogpsa


class Task:
    """A small model, safety batches and a reference set, all fixed by `seed`."""

    def __init__(self, seed=0, inputs=5, hidden=8):
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        self.model = torch.nn.Sequential(torch.nn.Linear(inputs, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 3))
        self.general = [(torch.randn(4, inputs, generator=generator), torch.randn(4, 3, generator=generator))
                        for _ in range(4)]
        self.safety = [(torch.randn(6, inputs, generator=generator), torch.randn(6, 3, generator=generator))
                       for _ in range(8)]
        self.reference_calls = 0

    def loss(self, batch):
        x, y = batch
        return torch.nn.functional.mse_loss(self.model(x), y)

    def reference(self, pass_):
        self.reference_calls += 1
        for batch in self.general:
            pass_.feed(self.loss(batch))

    def backward(self, step):
        self.loss(self.safety[step % len(self.safety)]).backward()

    def parameters(self):
        return dict(self.model.named_parameters())


def optimizer(task, params=None, inner=torch.optim.SGD, **settings):
    settings.setdefault("lr", 0.1)
    opt = ogpsa.ProjectedOptimizer(task.model.named_parameters() if params is None else params, inner, **settings)
    opt.set_reference(task.reference)
    return opt


def residual(opt, name, tensor):
    """|U^T x| relative to |x|: how much of `tensor` lies in the registered subspace of `name`,
    for a flat block (x = vec) or a right block (rows of x)."""
    basis = opt.basis(name).double()
    x = tensor.detach().double()
    coefficients = basis @ vec(x) if basis.shape[1] == x.numel() else x.reshape(x.shape[0], -1) @ basis.T
    return coefficients.norm().item() / max(x.norm().item(), 1e-30)


class Construction(unittest.TestCase):
    def test_the_documented_call(self):
        task = Task(inputs=12, hidden=16)  # wide enough that rank 8 leaves room to move
        model = task.model
        opt = ogpsa.ProjectedOptimizer(model.named_parameters(), torch.optim.AdamW, lr=1e-5,
                                       estimator="exact_svd", rank=8, family="right", refresh_every=30,
                                       placement="update")
        opt.set_reference(task.reference)
        before = {name: p.detach().clone() for name, p in model.named_parameters()}
        for step in range(3):
            opt.zero_grad()
            task.backward(step)
            opt.step()
        self.assertEqual(task.reference_calls, 1)
        self.assertIsInstance(opt, torch.optim.Optimizer)
        self.assertIsInstance(opt.inner, torch.optim.AdamW)
        for name, p in model.named_parameters():
            if name.endswith("weight"):  # 4 samples span the whole of 2.bias's 3 elements
                self.assertGreater((p - before[name]).norm().item(), 0.0, name)
            # steps of 1e-5 on weights of about 0.3: float32 rounds each to about 3e-3 of itself
            self.assertLess(residual(opt, name, p - before[name]), 1e-2, name)
        self.assertEqual(tuple(opt.basis("0.weight").shape), (8, 12))  # right: the input space
        self.assertEqual(tuple(opt.basis("0.bias").shape), (4, 16))  # a bias stays flat; 4 samples

    def test_a_trainer_passes_groups_and_the_inner_class_as_keywords(self):
        task = Task()
        groups = [{"params": [p for n, p in task.model.named_parameters() if "bias" not in n], "weight_decay": 0.1},
                  {"params": [p for n, p in task.model.named_parameters() if "bias" in n], "weight_decay": 0.0}]
        opt = ogpsa.ProjectedOptimizer(groups, optimizer=torch.optim.AdamW, lr=1e-3, betas=(0.8, 0.9))
        self.assertEqual([g["weight_decay"] for g in opt.param_groups], [0.1, 0.0])
        self.assertEqual(opt.param_groups[0]["betas"], (0.8, 0.9))
        self.assertEqual(opt.names, ["param_groups.0.params.0", "param_groups.0.params.1",
                                     "param_groups.1.params.0", "param_groups.1.params.1"])

    def test_param_groups_and_state_are_the_inner_optimizers(self):
        task = Task()
        opt = optimizer(task, inner=torch.optim.AdamW, lr=1e-3)
        task.backward(0)
        opt.step()
        self.assertIs(opt.param_groups, opt.inner.param_groups)
        self.assertIs(opt.state, opt.inner.state)
        self.assertIn("exp_avg", opt.state[task.model[0].weight])

    def test_frozen_parameters_are_not_registered(self):
        task = Task()
        task.model[0].bias.requires_grad_(False)
        opt = optimizer(task)
        self.assertNotIn("0.bias", opt.names)
        self.assertEqual(len(opt.names), 3)


class Groups(unittest.TestCase):
    def test_each_group_has_its_own_settings(self):
        task = Task()
        named = task.parameters()
        groups = [{"params": [("0.weight", named["0.weight"])], "ogpsa_rank": 1},
                  {"params": [("2.weight", named["2.weight"])], "ogpsa_rank": 3, "ogpsa_family": "right", "lr": 0.01},
                  {"params": [("0.bias", named["0.bias"]), ("2.bias", named["2.bias"])]}]
        opt = optimizer(task, groups, estimator="exact_svd", rank=2)
        task.backward(0)
        opt.step()
        self.assertEqual(opt.basis("0.weight").shape, (1, 40))
        self.assertEqual(opt.basis("2.weight").shape, (3, 8))
        self.assertEqual(opt.basis("2.bias").shape[0], 2)
        self.assertEqual(support.held(opt.settings("0.weight"), "rank"), "1")
        self.assertEqual(opt.param_groups[1]["lr"], 0.01)
        self.assertFalse(any(key.startswith("ogpsa_") for group in opt.param_groups for key in group))
        self.assertEqual(task.reference_calls, 1)  # one reference pass feeds every projector

    def test_groups_refresh_on_their_own_schedules(self):
        task = Task()
        named = task.parameters()
        groups = [{"params": [("0.weight", named["0.weight"])], "ogpsa_refresh_every": 2},
                  {"params": [(n, p) for n, p in named.items() if n != "0.weight"], "ogpsa_refresh_every": None}]
        opt = optimizer(task, groups)
        bases = []
        for step in range(5):
            opt.zero_grad()
            task.backward(step)
            opt.step()
            bases.append((opt.basis("0.weight").clone(), opt.basis("2.weight").clone()))
        self.assertEqual(task.reference_calls, 3)  # before steps 0, 2 and 4
        self.assertFalse(torch.equal(bases[0][0], bases[2][0]))
        self.assertTrue(all(torch.equal(bases[0][1], later[1]) for later in bases))

    def test_add_param_group(self):
        task = Task()
        named = task.parameters()
        opt = optimizer(task, [(n, p) for n, p in named.items() if not n.startswith("2.")],
                        estimator="exact_svd", rank=2)
        task.backward(0)
        opt.step()
        opt.add_param_group({"params": [("2.weight", named["2.weight"]), ("2.bias", named["2.bias"])],
                             "ogpsa_rank": 1, "lr": 0.05})
        self.assertEqual(len(opt.param_groups), 2)
        self.assertIs(opt.param_groups, opt.inner.param_groups)
        self.assertTrue(opt.refresh_due())
        opt.zero_grad()
        task.backward(1)
        opt.step()
        self.assertEqual(opt.basis("2.weight").shape[0], 1)
        self.assertLess(residual(opt, "2.weight", named["2.weight"].grad), 1e-5)

    def test_a_failed_add_param_group_changes_nothing(self):
        task = Task()
        named = task.parameters()
        opt = optimizer(task, [(n, p) for n, p in named.items() if not n.startswith("2.")])
        with self.assertRaises(ValueError):  # mean_gradient has flat blocks only
            opt.add_param_group({"params": [("2.weight", named["2.weight"])], "ogpsa_family": "left"})
        self.assertEqual(len(opt.param_groups), 1)
        self.assertNotIn("2.weight", opt.names)


class Exclusion(unittest.TestCase):
    def check_excluded(self, opt, task, excluded):
        task.backward(0)
        raw = {name: p.grad.clone() for name, p in task.model.named_parameters()}
        opt.step()
        for name, p in task.model.named_parameters():
            self.assertEqual(torch.equal(p.grad, raw[name]), name in excluded, name)
        self.assertEqual(sorted(set(task.parameters()) - set(opt.names)), sorted(excluded))

    def test_by_name(self):
        task = Task()
        self.check_excluded(optimizer(task, exclude=["0.bias", "2.bias"]), task, {"0.bias", "2.bias"})

    def test_by_predicate(self):
        task = Task()
        self.check_excluded(optimizer(task, exclude=lambda name, p: p.dim() == 1), task, {"0.bias", "2.bias"})

    def test_by_group(self):
        task = Task()
        named = task.parameters()
        groups = [{"params": [("0.weight", named["0.weight"]), ("2.weight", named["2.weight"])]},
                  {"params": [("0.bias", named["0.bias"]), ("2.bias", named["2.bias"])], "ogpsa_exclude": True}]
        self.check_excluded(optimizer(task, groups), task, {"0.bias", "2.bias"})

    def test_an_unknown_name_is_an_error(self):
        with self.assertRaisesRegex(ValueError, "'0.biass'"):
            optimizer(Task(), exclude=["0.biass"])


class Placements(unittest.TestCase):
    def test_gradient_projects_before_the_inner_step(self):
        task = Task()
        opt = optimizer(task, lr=0.1)
        task.backward(0)
        before = {name: p.detach().clone() for name, p in task.model.named_parameters()}
        opt.step()
        for name, p in task.model.named_parameters():
            self.assertLess(residual(opt, name, p.grad), 1e-5, name)
            self.assertTrue(torch.equal(p.detach(), before[name].add(p.grad, alpha=-0.1)), name)

    def test_update_projects_the_step_adamw_takes(self):
        task = Task()
        opt = optimizer(task, inner=torch.optim.AdamW, lr=1e-2, estimator="exact_svd", rank=2, placement="update")
        for step in range(3):
            opt.zero_grad()
            task.backward(step)
            before = {name: p.detach().clone() for name, p in task.model.named_parameters()}
            opt.step()
            for name, p in task.model.named_parameters():
                self.assertLess(residual(opt, name, p.detach() - before[name]), 1e-4, name)
        self.assertGreater(residual(opt, "0.weight", task.model[0].weight.grad), 1e-3)  # .grad is left as is

    def test_gradient_and_update_projects_both(self):
        task = Task()
        opt = optimizer(task, inner=torch.optim.AdamW, lr=1e-2, estimator="exact_svd", rank=2,
                        placement="gradient_and_update")
        task.backward(0)
        before = {name: p.detach().clone() for name, p in task.model.named_parameters()}
        opt.step()
        for name, p in task.model.named_parameters():
            self.assertLess(residual(opt, name, p.grad), 1e-5, name)
            self.assertLess(residual(opt, name, p.detach() - before[name]), 1e-4, name)

    def test_an_empty_subspace_steps_like_the_inner_optimizer(self):
        task, twin = Task(), Task()
        # steps as large as the weights, where old + (new - old) rounds differently from new
        opt = ogpsa.ProjectedOptimizer(task.model.named_parameters(), torch.optim.AdamW, lr=0.3,
                                       estimator="exact_svd", rank=2, placement="update")
        opt.set_reference(lambda pass_: pass_.feed_gradients({}))  # all zero: every subspace empty
        inner = torch.optim.AdamW(twin.model.parameters(), lr=0.3)
        for step in range(3):
            for t, o in ((task, opt), (twin, inner)):
                o.zero_grad()
                t.backward(step)
                o.step()
        self.assertEqual(opt.basis("0.weight").shape[0], 0)
        for p, q in zip(task.model.parameters(), twin.model.parameters()):
            self.assertTrue(torch.equal(p, q))

    def test_micro_batches_project_each_backward(self):
        task = Task()
        opt = optimizer(task, estimator="exact_svd", rank=2, placement="micro_batches")
        with self.assertRaisesRegex(RuntimeError, "refresh"):
            task.backward(0)
        opt.zero_grad(set_to_none=True)
        opt.refresh()
        self.assertEqual(task.reference_calls, 1)
        task.backward(0)
        task.backward(1)
        accumulated = {name: p.grad.clone() for name, p in task.model.named_parameters()}
        for name in accumulated:
            self.assertLess(residual(opt, name, accumulated[name]), 1e-5, name)
        raw = Task()  # the same model: the sum of the raw gradients, projected once
        raw.backward(0)
        raw.backward(1)
        for name, p in raw.model.named_parameters():
            basis = opt.basis(name).double().T
            expected = support.remove(basis, vec(p.grad))
            self.assertLess((vec(accumulated[name]) - expected).abs().max().item(), 1e-5, name)
        opt.step()  # steps, then refreshes when due
        self.assertEqual(task.reference_calls, 1)

    def test_an_exception_in_the_update_step_restores_every_weight(self):
        class Failing(torch.optim.SGD):
            def step(self, closure=None):
                super().step(closure)
                raise RuntimeError("the inner step failed")

        task = Task()
        opt = ogpsa.ProjectedOptimizer(task.model.named_parameters(), Failing, lr=0.5, placement="update")
        opt.set_reference(task.reference)
        task.backward(0)
        before = [p.detach().clone() for p in task.model.parameters()]
        with self.assertRaisesRegex(RuntimeError, "the inner step failed"):
            opt.step()
        for p, old in zip(task.model.parameters(), before):
            self.assertTrue(torch.equal(p, old))

    def test_project_before_clipping(self):
        task = Task()
        opt = optimizer(task)
        task.backward(0)
        opt.project()
        projected = {name: p.grad.clone() for name, p in task.model.named_parameters()}
        torch.nn.utils.clip_grad_norm_(task.model.parameters(), 1e-3)
        clipped = {name: p.grad.clone() for name, p in task.model.named_parameters()}
        with self.assertRaisesRegex(RuntimeError, "already projected"):
            opt.project()
        opt.step()  # does not project again
        for name, p in task.model.named_parameters():
            self.assertTrue(torch.equal(p.grad, clipped[name]), name)
            self.assertLess(residual(opt, name, projected[name]), 1e-5, name)

    def test_step_with_a_closure(self):
        task = Task()
        opt = optimizer(task)

        losses = []

        def closure():
            opt.zero_grad()
            losses.append(task.loss(task.safety[0]))
            losses[-1].backward()
            return losses[-1]

        self.assertIs(opt.step(closure), losses[0])
        self.assertEqual(len(losses), 1)
        self.assertLess(residual(opt, "0.weight", task.model[0].weight.grad), 1e-5)

    def test_a_closure_after_project_gets_its_gradients_projected(self):
        task = Task()
        opt = optimizer(task)
        task.backward(0)
        opt.project()
        opt.step(lambda: task.backward(1))  # accumulates onto the projected gradients, no zero_grad
        self.assertLess(residual(opt, "0.weight", task.model[0].weight.grad), 1e-5)


class Schedules(unittest.TestCase):
    def test_refreshes_every_n_steps(self):
        task = Task()
        opt = optimizer(task, refresh_every=3)
        for step in range(7):
            opt.zero_grad()
            task.backward(step)
            opt.step()
        self.assertEqual(task.reference_calls, 3)  # before steps 0, 3 and 6

    def test_a_fixed_basis_is_estimated_once(self):
        task = Task()
        opt = optimizer(task, refresh_every=None)
        for step in range(5):
            opt.zero_grad()
            task.backward(step)
            opt.step()
        self.assertEqual(task.reference_calls, 1)

    def test_an_lr_scheduler_drives_the_inner_optimizer(self):
        task = Task()
        opt = optimizer(task, lr=0.1)
        scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
        for step in range(3):
            opt.zero_grad()
            task.backward(step)
            before = task.model[0].weight.detach().clone()
            opt.step()
            lr = opt.inner.param_groups[0]["lr"]
            self.assertEqual(lr, 0.1 * 0.5 ** step)
            self.assertTrue(torch.equal(task.model[0].weight, before.add(task.model[0].weight.grad, alpha=-lr)))
            scheduler.step()

    def test_grad_scaler(self):
        if not hasattr(torch, "amp") or not hasattr(torch.amp, "GradScaler"):
            raise unittest.SkipTest(f"torch {torch.__version__} has no GradScaler for CPU tensors "
                                    "(torch.amp.GradScaler('cpu') needs torch 2.3)")
        scaled, plain = Task(), Task()
        opt, reference = optimizer(scaled), optimizer(plain)
        scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
        scaler.scale(scaled.loss(scaled.safety[0])).backward()
        scaler.step(opt)  # unscales through opt.param_groups, then steps
        scaler.update()
        plain.backward(0)
        reference.step()
        for p, q in zip(scaled.model.parameters(), plain.model.parameters()):
            self.assertTrue(torch.allclose(p.grad, q.grad, rtol=1e-6, atol=0.0))
            self.assertTrue(torch.allclose(p, q, rtol=1e-6, atol=0.0))
        self.assertLess(residual(opt, "0.weight", scaled.model[0].weight.grad), 1e-5)


class ZeroGrad(unittest.TestCase):
    def test_set_to_none_and_zeros(self):
        task = Task()
        opt = optimizer(task)
        task.backward(0)
        opt.zero_grad(set_to_none=False)
        self.assertTrue(all(p.grad is not None and not p.grad.any() for p in task.model.parameters()))
        opt.zero_grad(set_to_none=True)
        self.assertTrue(all(p.grad is None for p in task.model.parameters()))


class ReferencePasses(unittest.TestCase):
    def test_a_refresh_leaves_every_gradient_alone(self):
        task = Task()
        opt = optimizer(task)
        task.backward(0)
        grads = {name: (p.grad, p.grad._version, p.grad.clone()) for name, p in task.model.named_parameters()}
        opt.refresh()
        for name, p in task.model.named_parameters():
            grad, version, values = grads[name]
            self.assertIs(p.grad, grad)
            self.assertEqual(p.grad._version, version)
            self.assertTrue(torch.equal(p.grad, values))

    def test_a_hand_written_pass(self):
        task = Task()
        opt = ogpsa.ProjectedOptimizer(task.model.named_parameters(), torch.optim.SGD, lr=0.1,
                                       estimator="exact_svd", rank=3)
        self.assertTrue(opt.refresh_due())
        with opt.reference_pass() as pass_:
            self.assertEqual(pass_.names, opt.names)
            for batch in task.general:
                pass_.feed(task.loss(batch))
        self.assertFalse(opt.refresh_due())
        self.assertEqual(opt.basis("0.weight").shape[0], 3)
        self.assertEqual(set(opt.last_refresh), set(opt.names))
        task.backward(0)
        opt.step()  # no reference function needed: the basis is fresh
        self.assertLess(residual(opt, "0.weight", task.model[0].weight.grad), 1e-5)

    def test_an_exception_in_a_pass_keeps_every_basis(self):
        task = Task()
        opt = optimizer(task, estimator="exact_svd", rank=2)
        opt.refresh()
        before = {name: opt.basis(name) for name in opt.names}
        with self.assertRaisesRegex(KeyError, "stop"):
            with opt.reference_pass() as pass_:
                pass_.feed(task.loss(task.safety[0]))
                raise KeyError("stop")
        for name in opt.names:
            self.assertTrue(torch.equal(opt.basis(name), before[name]), name)
        opt.refresh()  # the abandoned pass left nothing open

    def test_no_reference_function(self):
        task = Task()
        opt = ogpsa.ProjectedOptimizer(task.model.named_parameters(), torch.optim.SGD, lr=0.1)
        task.backward(0)
        with self.assertRaisesRegex(RuntimeError, "set_reference"):
            opt.step()

    def test_gradients_and_columns_fed_directly(self):
        task = Task()
        opt = ogpsa.ProjectedOptimizer(task.model.named_parameters(), torch.optim.SGD, lr=0.1,
                                       estimator="exact_svd", rank=2, family="right")
        inputs = torch.randn(5, 6, dtype=torch.float32)  # dimension x m: six input vectors of layer 0
        with opt.reference_pass() as pass_:
            pass_.feed_columns(task.model[0].weight, inputs)
            pass_.feed_gradients({"2.weight": torch.randn(3, 8), task.model[2].bias: torch.randn(3)})
            pass_.feed_gradients({"0.bias": torch.randn(8), "2.weight": torch.randn(3, 8),
                                  "2.bias": torch.randn(3)})
        self.assertTrue(support.same_subspace(support.top_left_singular(inputs, 2), opt.basis("0.weight").T, 1e-5))
        self.assertEqual(opt.basis("2.weight").shape, (2, 8))
        with self.assertRaisesRegex(ValueError, "'nonexistent'"):
            with opt.reference_pass() as pass_:
                pass_.feed_gradients({"nonexistent": torch.zeros(1)})


class Diagnostics(unittest.TestCase):
    def test_every_projection_is_measured(self):
        task = Task()
        opt = optimizer(task, estimator="exact_svd", rank=2, diagnostics=True)
        task.backward(0)
        raw = {name: p.grad.clone() for name, p in task.model.named_parameters()}
        opt.step()
        self.assertEqual(set(opt.last_projection), set(opt.names))
        for name, p in task.model.named_parameters():
            record = opt.last_projection[name]
            self.assertEqual(record.name, name)
            self.assertEqual(record.rank, 2)
            self.assertAlmostEqual(record.gradient_norm, raw[name].double().norm().item(), delta=1e-5)
            self.assertAlmostEqual(record.projected_norm, p.grad.double().norm().item(), delta=1e-5)
            self.assertGreaterEqual(record.removed_fraction, 0.0)
            self.assertLessEqual(record.removed_fraction, 1.0)
            self.assertLess(abs(record.cosine_after), 1e-4)
            self.assertFalse(record.non_finite)
            refresh = opt.last_refresh[name]
            self.assertEqual((refresh.rank, refresh.dropped), (2, 0))
            self.assertTrue(0.0 < refresh.captured_energy <= 1.0)

    def test_without_diagnostics_nothing_is_measured(self):
        task = Task()
        opt = optimizer(task)
        task.backward(0)
        opt.step()
        self.assertEqual(opt.last_projection, {})
        self.assertEqual(set(opt.last_refresh), set(opt.names))


if __name__ == "__main__":
    unittest.main()
