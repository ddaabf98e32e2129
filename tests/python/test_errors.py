"""Every bad input raises the documented exception, with a message that names the value: bad
settings (ValueError, from C++ for the hyper-parameters; TypeError for a wrong type), bad tensors
(ValueError from C++), and a reference function that calls backward() (RuntimeError)."""

import os
import sys
import unittest
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import ogpsa  # noqa: E402

setUpModule = support.require_ogpsa


def build(*parameters, **settings):
    """An optimizer over ("w", parameter) pairs; a 4 x 3 float32 weight when none is given."""
    if not parameters:
        parameters = (torch.nn.Parameter(torch.zeros(4, 3)),)
    names = ["w"] if len(parameters) == 1 else [f"w{i}" for i in range(len(parameters))]
    return ogpsa.ProjectedOptimizer(list(zip(names, parameters)), torch.optim.SGD, lr=0.1, **settings)


class Settings(unittest.TestCase):
    def test_unknown_estimator(self):
        with self.assertRaisesRegex(ValueError, "unknown estimator 'nonsense'"):
            build(estimator="nonsense")

    def test_rank_zero(self):
        with self.assertRaisesRegex(ValueError, r"rank must be at least 1, got 0\b"):
            build(estimator="exact_svd", rank=0)

    def test_energy_outside_zero_one(self):
        for energy, shown in ((0, "0"), (1.5, "1.5"), (-0.25, "-0.25"), (float("nan"), "nan")):
            with self.subTest(energy=energy):
                with self.assertRaisesRegex(ValueError, rf"energy threshold must be in \(0, 1\], got {shown}\b"):
                    build(estimator="exact_svd", energy=energy)
        build(estimator="exact_svd", energy=1.0)  # the bound itself is allowed

    def test_unknown_names(self):
        cases = [(dict(rule="orthogonally"), "unknown rule 'orthogonally'"),
                 (dict(family="diagonal"), "unknown family 'diagonal'"),
                 (dict(placement="weights"), "unknown placement 'weights'"),
                 (dict(rule="conflict_only", mode="both"),
                  "'mode' must be one of per_direction, threshold, got 'both'"),
                 (dict(basis_dtype="float16"), "a float16 basis for float32 gradients"),
                 (dict(estimator="mean_gradient", rank=2), "'rank'"),
                 (dict(refresh_every=0), "refresh_every must be at least 1, or None for a fixed basis, got 0")]
        for settings, message in cases:
            with self.subTest(**settings):
                with self.assertRaisesRegex(ValueError, message):
                    build(**settings)

    def test_unknown_group_key(self):
        w = torch.nn.Parameter(torch.zeros(3))
        with self.assertRaisesRegex(ValueError, "'ogpsa_rnak'"):
            ogpsa.ProjectedOptimizer([{"params": [w], "ogpsa_rnak": 2}], torch.optim.SGD, lr=0.1)

    def test_unknown_keyword_reaches_the_inner_optimizer(self):
        with self.assertRaisesRegex(TypeError, "lrr"):
            build(lrr=0.1)

    def test_wrong_types(self):
        cases = [dict(estimator="exact_svd", rank="8"), dict(estimator="exact_svd", rank=2.5),
                 dict(estimator="exact_svd", rank=True), dict(estimator="exact_svd", energy="0.9"),
                 dict(first_set_required=1), dict(estimator=3), dict(refresh_every=2.0)]
        for settings in cases:
            with self.subTest(**settings):
                value = repr(next(v for k, v in settings.items() if k != "estimator" or len(settings) == 1))
                with self.assertRaisesRegex(TypeError, f"got {value}"):
                    build(**settings)

    def test_an_optimizer_instance_instead_of_its_class(self):
        w = torch.nn.Parameter(torch.zeros(3))
        with self.assertRaisesRegex(TypeError, "optimizer class"):
            ogpsa.ProjectedOptimizer([w], torch.optim.SGD([w], lr=0.1))

    def test_nothing_to_project(self):
        with self.assertRaisesRegex(ValueError, "no parameter to project"):
            build(torch.nn.Parameter(torch.zeros(3), requires_grad=False))

    def test_tied_weights(self):
        w = torch.nn.Parameter(torch.zeros(3))
        with warnings.catch_warnings(), self.assertRaisesRegex(ValueError, "'w1' is the same tensor as 'w0'"):
            warnings.simplefilter("ignore")  # torch warns of the duplicate; across groups it raises first
            ogpsa.ProjectedOptimizer([("w0", w), ("w1", w)], torch.optim.SGD, lr=0.1)


class Tensors(unittest.TestCase):
    def setUp(self):
        self.w = torch.nn.Parameter(torch.zeros(4, 3))
        self.opt = build(self.w, estimator="exact_svd", rank=2)

    def feed(self, **gradients):
        with self.opt.reference_pass() as pass_:
            pass_.feed_gradients(gradients)

    def test_wrong_dtype(self):
        with self.assertRaisesRegex(ValueError, "dtype Double"):
            self.feed(w=torch.zeros(4, 3, dtype=torch.float64))
        with self.assertRaisesRegex(ValueError, "unknown gradient dtype 'complex64'"):
            build(torch.nn.Parameter(torch.zeros(3, dtype=torch.complex64)))

    def test_wrong_shape(self):
        with self.assertRaisesRegex(ValueError, r"extents \[4, 3\], got \[3, 4\]"):
            self.feed(w=torch.zeros(3, 4))

    def test_non_contiguous_gradient(self):
        self.feed(w=torch.randn(4, 3))
        self.w.grad = torch.randn(3, 4).T
        with self.assertRaisesRegex(ValueError, r"column-major \(strides \[1, 4\]\)"):
            self.opt.step()

    def test_non_contiguous_parameter(self):
        with self.assertRaisesRegex(ValueError, r"only when contiguous \(sizes \[4, 2, 3\], strides \[1, 12, 4\]\)"):
            build(torch.nn.Parameter(torch.zeros(2, 3, 4).permute(2, 0, 1)))

    def test_non_contiguous_columns(self):
        opt = build(self.w, estimator="exact_svd", rank=2, family="right")
        with self.assertRaisesRegex(ValueError, "one unit stride"):
            with opt.reference_pass() as pass_:
                pass_.feed_columns(self.w, torch.zeros(6, 8)[::2, ::2])

    def test_bad_losses(self):
        with self.assertRaisesRegex(ValueError, r"one-element tensor, got \[2\]"):
            with self.opt.reference_pass() as pass_:
                pass_.feed((self.w.sum(0)[:2] * 1.0))
        with self.assertRaisesRegex(ValueError, "does not require grad"):
            with self.opt.reference_pass() as pass_:
                pass_.feed(torch.tensor(1.0))

    def test_an_unknown_parameter(self):
        with self.assertRaisesRegex(ValueError, r"a tensor of shape \[5\] is not a registered parameter"):
            with self.opt.reference_pass() as pass_:
                pass_.feed_columns(torch.zeros(5), torch.zeros(5, 1))


class Closure(unittest.TestCase):
    def test_a_reference_function_that_calls_backward(self):
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 2)
        x = torch.randn(4, 3)
        opt = ogpsa.ProjectedOptimizer(model.named_parameters(), torch.optim.SGD, lr=0.1, estimator="exact_svd",
                                       rank=1, refresh_every=1)
        opt.set_reference(lambda pass_: pass_.feed(model(x).square().mean()))
        model(x).sum().backward()
        opt.step()
        bases = {name: opt.basis(name) for name in opt.names}

        def leaking(pass_):
            loss = model(x).square().mean()
            loss.backward()  # writes reference gradients into .grad
            pass_.feed(model(x).square().mean())

        opt.set_reference(leaking)
        with self.assertRaisesRegex(RuntimeError, "changed the gradient of parameter 'weight'.*backward"):
            opt.step()
        for name in opt.names:
            self.assertTrue(torch.equal(opt.basis(name), bases[name]), name)
        opt.set_reference(lambda pass_: pass_.feed(model(x).square().mean()))
        opt.refresh()  # the pass was abandoned: a new one begins


if __name__ == "__main__":
    unittest.main()
