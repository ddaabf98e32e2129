"""Projections through the Python package against bases computed independently in torch.linalg:
every estimator, family and rule, every gradient dtype, and every hyper-parameter reaching C++."""

import os
import sys
import unittest

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import ogpsa, remove, top_left_singular, vec  # noqa: E402

setUpModule = support.require_ogpsa


def project_once(gradient, references, dtype=torch.float32, **settings):
    """A parameter shaped like `gradient`, a refresh from `references` (one {"w": r} sample each,
    or a reference function), one step with SGD at lr 0: returns the optimizer and the parameter,
    whose .grad is the projected gradient."""
    w = torch.nn.Parameter(torch.zeros(gradient.shape, dtype=dtype))
    opt = ogpsa.ProjectedOptimizer([("w", w)], torch.optim.SGD, lr=0.0, **settings)
    opt.set_reference(references if callable(references)
                      else support.reference_of([{"w": r.to(dtype)} for r in references]))
    w.grad = gradient.to(dtype).clone()
    opt.step()
    return opt, w


def oriented(basis, references):
    """`basis` with each column pointing along the sum of the references, as the estimators do."""
    signs = torch.sign(basis.T @ sum(vec(r) for r in references))
    return basis * torch.where(signs == 0, torch.ones_like(signs), signs)


class Estimators(unittest.TestCase):
    """The projected gradient is orthogonal to the basis torch.linalg computes from the same data."""

    def setUp(self):
        torch.manual_seed(0)

    def assert_projected(self, projected, expected, gradient, tolerance=1e-5):
        error = (vec(projected) - expected.reshape(-1)).abs().max().item()
        self.assertLess(error, tolerance * vec(gradient).norm().item())

    def test_exact_svd_flat_is_orthogonal_to_the_top_singular_vectors(self):
        references = [torch.randn(5, 7) for _ in range(4)]
        g = torch.randn(5, 7)
        opt, w = project_once(g, references, estimator="exact_svd", rank=2)
        u = top_left_singular(torch.stack([vec(r) for r in references], 1), 2)
        self.assert_projected(w.grad, remove(u, vec(g)), g)
        self.assertLess((u.T @ vec(w.grad)).abs().max().item(), 1e-5 * vec(g).norm().item())
        self.assertEqual(tuple(opt.basis(w).shape), (2, 35))
        self.assertTrue(support.same_subspace(u, opt.basis(w).T, 1e-6))

    def test_exact_svd_right_family_protects_the_input_space(self):
        references = [torch.randn(4, 6) for _ in range(4)]
        g = torch.randn(4, 6)
        opt, w = project_once(g, references, estimator="exact_svd", rank=2, family="right")
        v = top_left_singular(torch.cat([r.double() for r in references], 0).T, 2)  # rows of the R_j
        self.assert_projected(w.grad, g.double() - g.double() @ v @ v.T, g)
        self.assertEqual(tuple(opt.basis(w).shape), (2, 6))

    def test_exact_svd_left_family_protects_the_output_space(self):
        references = [torch.randn(4, 6) for _ in range(3)]
        g = torch.randn(4, 6)
        opt, w = project_once(g, references, estimator="exact_svd", rank=3, family="left")
        u = top_left_singular(torch.cat([r.double() for r in references], 1), 3)  # columns of the R_j
        self.assert_projected(w.grad, g.double() - u @ (u.T @ g.double()), g)
        self.assertEqual(tuple(opt.basis(w).shape), (3, 4))

    def test_exact_svd_energy_keeps_the_smallest_rank_that_captures_it(self):
        q, _ = torch.linalg.qr(torch.randn(20, 4, dtype=torch.float64))
        r, _ = torch.linalg.qr(torch.randn(4, 4, dtype=torch.float64))
        strengths = torch.tensor([3.0, 2.0, 1.0, 0.1], dtype=torch.float64)
        data = q @ torch.diag(strengths) @ r.T  # singular values 3, 2, 1, 0.1
        references = [data[:, j].reshape(4, 5).float() for j in range(4)]
        g = torch.randn(4, 5)
        opt, w = project_once(g, references, estimator="exact_svd", energy=0.9)
        # energies 9, 4, 1, 0.01: two directions capture 13 / 14.01 > 0.9, one 9 / 14.01 < 0.9
        self.assertEqual(opt.basis(w).shape[0], 2)
        self.assertAlmostEqual(opt.last_refresh["w"].captured_energy, 13 / 14.01, places=5)
        self.assertTrue(support.same_subspace(q[:, :2], opt.basis(w).T, 1e-5))
        self.assert_projected(w.grad, remove(q[:, :2], vec(g)), g)

    def test_mean_gradient_removes_the_mean_of_each_set(self):
        first = [torch.randn(3, 4) for _ in range(3)]
        second = [torch.randn(3, 4) for _ in range(2)]
        g = torch.randn(3, 4)

        def reference(pass_):
            for r in first:
                pass_.feed_gradients({"w": r})
            for r in second:
                pass_.feed_gradients({"w": r}, set=1)

        opt, w = project_once(g, reference)  # the defaults: mean_gradient, orthogonal, flat
        means = torch.stack([sum(vec(r) for r in first) / 3, sum(vec(r) for r in second) / 2], 1)
        q, _ = torch.linalg.qr(means)
        self.assertEqual(opt.basis(w).shape[0], 2)
        self.assert_projected(w.grad, remove(q, vec(g)), g)

    def test_mean_gradient_with_one_set_is_the_published_projection(self):
        references = [torch.randn(6) for _ in range(4)]
        g = torch.randn(6)
        _, w = project_once(g, references)
        b = sum(vec(r) for r in references) / 4
        b = b / (b.norm() + 1e-10)
        self.assert_projected(w.grad, vec(g) - (vec(g) @ b) / (b @ b + 1e-8) * b, g)

    def test_sketching_estimators_recover_exactly_low_rank_data(self):
        span = torch.randn(30, 2, dtype=torch.float64)
        references = [(span @ torch.randn(2, dtype=torch.float64)).reshape(5, 6).float() for _ in range(6)]
        q, _ = torch.linalg.qr(span)
        g = torch.randn(5, 6)
        for estimator in ("randomized_svd", "single_pass_svd", "frequent_directions", "incremental_svd"):
            with self.subTest(estimator=estimator):
                opt, w = project_once(g, references, estimator=estimator, rank=2)
                self.assertTrue(support.same_subspace(q, opt.basis(w).T, 1e-5))
                self.assert_projected(w.grad, remove(q, vec(g)), g, tolerance=1e-4)


class Rules(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(1)
        self.references = [torch.randn(8) for _ in range(4)]
        self.basis = oriented(top_left_singular(torch.stack([vec(r) for r in self.references], 1), 2),
                              self.references)

    def test_soft_removes_a_fraction_alpha(self):
        g = torch.randn(8)
        _, w = project_once(g, self.references, estimator="exact_svd", rank=2, rule="soft", alpha=0.25)
        expected = vec(g) - 0.25 * self.basis @ (self.basis.T @ vec(g))
        self.assertLess((vec(w.grad) - expected).abs().max().item(), 1e-5 * vec(g).norm().item())

    def test_conflict_only_removes_only_the_components_against_the_reference(self):
        u = self.basis
        g = (-3 * u[:, 0] + 2 * u[:, 1] + remove(u, torch.randn(8, dtype=torch.float64))).float()
        _, w = project_once(g, self.references, estimator="exact_svd", rank=2, rule="conflict_only")
        expected = vec(g) + 3 * u[:, 0]  # the conflicting first component only
        self.assertLess((vec(w.grad) - expected).abs().max().item(), 1e-5 * vec(g).norm().item())

    def test_conflict_only_threshold_scales_an_agreeing_gradient(self):
        b = sum(vec(r) for r in self.references)
        b = b / b.norm()
        agreeing = (b + 0.1 * remove(b[:, None], torch.randn(8, dtype=torch.float64))).float()
        settings = dict(rule="conflict_only", mode="threshold", base_scale=0.5)
        _, w = project_once(agreeing, self.references, **settings)
        self.assertLess((vec(w.grad) - 0.5 * vec(agreeing)).abs().max().item(), 1e-6)
        _, w = project_once(-agreeing, self.references, **settings)
        expected = remove(b[:, None], vec(-agreeing))
        self.assertLess((vec(w.grad) - expected).abs().max().item(), 1e-5)


class Dtypes(unittest.TestCase):
    """Every gradient dtype, with fp32 and bf16 bases: orthogonal to the projector's own basis."""

    def test_every_gradient_dtype(self):
        torch.manual_seed(2)
        references = [torch.randn(6, 5, dtype=torch.float64) for _ in range(3)]
        g = torch.randn(6, 5, dtype=torch.float64)
        tolerances = {torch.float64: 1e-6, torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 2e-2}
        for dtype, tolerance in tolerances.items():
            for basis_dtype in ("float32", "bfloat16"):
                with self.subTest(dtype=dtype, basis_dtype=basis_dtype):
                    opt, w = project_once(g, references, dtype=dtype, estimator="exact_svd", rank=2,
                                          basis_dtype=basis_dtype)
                    basis = opt.basis(w)
                    self.assertEqual(basis.dtype, getattr(torch, basis_dtype))
                    self.assertEqual(w.grad.dtype, dtype)
                    # a bf16 basis is orthonormal to bf16 precision only, whatever the gradients
                    bound = max(tolerance, tolerances[torch.bfloat16] if basis_dtype == "bfloat16" else 0.0)
                    residual = (basis.double() @ vec(w.grad)).abs().max().item()
                    self.assertLess(residual, bound * vec(g).norm().item())
                    self.assertGreater((vec(w.grad) - vec(g)).norm().item(), 0.1)


def same_value(text, value):
    if isinstance(value, bool):
        return text == ("true" if value else "false")
    if isinstance(value, (int, float)):
        return float(text) == float(value)
    return text == value


class Settings(unittest.TestCase):
    """Every hyper-parameter given in Python is the one C++ holds."""

    CASES = [
        ("mean_gradient", dict(norm_epsilon=1e-9, orthogonalization_epsilon=1e-7, parallel_tolerance=1e-5,
                               first_set_required=False)),
        ("exact_svd", dict(rank=3, energy=0.75)),
        ("randomized_svd", dict(rank=3, energy=0.75, oversampling=4, power_iterations=1, seed=7)),
        ("single_pass_svd", dict(rank=3, energy=0.75, oversampling=4, seed=7)),
        ("frequent_directions", dict(rank=3, energy=0.75, sketch_width=5, block=2)),
    ]
    RULES = [("orthogonal", {}), ("soft", dict(alpha=0.3)),
             ("conflict_only", dict(mode="threshold", base_scale=0.5, several_directions="unchanged"))]

    def test_every_hyper_parameter_reaches_cpp(self):
        for estimator, options in self.CASES:
            for rule, rule_options in self.RULES:
                with self.subTest(estimator=estimator, rule=rule):
                    w = torch.nn.Parameter(torch.zeros(4, 3))
                    opt = ogpsa.ProjectedOptimizer([("w", w)], torch.optim.SGD, lr=0.1, estimator=estimator,
                                                   rule=rule, refresh_every=7, basis_dtype="bfloat16",
                                                   **options, **rule_options)
                    held_settings = opt.settings(w)
                    expected = dict(estimator=estimator, rule=rule, refresh_every=7, basis_dtype="bfloat16",
                                    **options, **rule_options)
                    for name, value in expected.items():
                        self.assertTrue(same_value(support.held(held_settings, name), value),
                                        f"{name}: {value!r} given, C++ holds {held_settings}")

    def test_a_changed_rank_changes_the_basis(self):
        torch.manual_seed(3)
        references = [torch.randn(4, 5) for _ in range(5)]
        g = torch.randn(4, 5)
        projected = {}
        for rank in (2, 3):
            opt, w = project_once(g, references, estimator="exact_svd", rank=rank)
            self.assertEqual(opt.basis(w).shape[0], rank)
            self.assertEqual(support.held(opt.settings(w), "rank"), str(rank))
            projected[rank] = vec(w.grad)
        self.assertGreater((projected[2] - projected[3]).norm().item(), 1e-3)


if __name__ == "__main__":
    unittest.main()
