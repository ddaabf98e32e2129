"""The compiled operators' contract (python/README.md): what each operator does, the state it
exports, and which Python exception each kind of library error becomes, message intact."""

import os
import unittest

import torch

LIBRARY = os.environ.get("OGPSA_OPS_LIBRARY")
if not LIBRARY or not os.path.exists(LIBRARY):
    raise unittest.SkipTest("OGPSA_OPS_LIBRARY does not name the built operators library (got %r)" % LIBRARY)
torch.ops.load_library(LIBRARY)
ops = torch.ops.ogpsa


def projector(estimator="exact_svd", rank=2, rule="orthogonal", rule_options=None, refresh_every=30,
              gradient="float32", basis="float32", **estimator_options):
    if rank is not None:
        estimator_options["rank"] = str(rank)
    return torch.classes.ogpsa.Projector(estimator, estimator_options, rule, rule_options or {}, refresh_every,
                                         gradient, basis, "cpu")


def estimated(p, shape=(6, 4), family="flat", references=5, dtype=torch.float32, seed=0):
    """Registers one block and estimates it from random references; returns (block, references)."""
    generator = torch.Generator().manual_seed(seed)
    block = ops.add_block(p, "w", list(shape), list(torch.empty(shape).stride()), family)
    refs = [torch.randn(shape, generator=generator).to(dtype) for _ in range(references)]
    ops.begin_reference_pass(p)
    for r in refs:
        ops.feed(p, block, r, 0)
    ops.finish_reference_pass(p)
    return block, refs


def span_projector(vectors, rank):
    """The orthogonal projector onto the top-`rank` left singular space of `vectors` (columns)."""
    u = torch.linalg.svd(vectors.double(), full_matrices=False).U[:, :rank]
    return u @ u.T


class Projection(unittest.TestCase):
    def test_exact_svd_basis_is_the_references_top_singular_space(self):
        p = projector(rank=2)
        block, refs = estimated(p)
        u = ops.basis(p, block).double()  # rank x dimension
        self.assertEqual(tuple(u.shape), (2, 24))
        expected = span_projector(torch.stack([r.flatten() for r in refs], dim=1), 2)
        self.assertLess((u.T @ u - expected).abs().max().item(), 1e-5)

    def test_projected_gradient_is_orthogonal_to_the_basis_and_keeps_the_rest(self):
        p = projector(rank=3)
        block, _ = estimated(p)
        g = torch.randn(6, 4, generator=torch.Generator().manual_seed(7))
        before = g.clone()
        ops.project(p, [block], [g], True, False)
        u = ops.basis(p, block).double()
        self.assertLess((u @ g.flatten().double()).abs().max().item(), 1e-5)
        expected = before.flatten().double() - u.T @ (u @ before.flatten().double())
        self.assertLess((g.flatten().double() - expected).abs().max().item(), 1e-5)
        self.assertEqual(ops.counters(p), [1, 1, 1])

    def test_right_block_from_layer_inputs(self):
        p = projector(rank=2)
        block = ops.add_block(p, "fc", [5, 8], [8, 1], "right")
        inputs = torch.randn(8, 10, generator=torch.Generator().manual_seed(3))  # dimension 8, 10 vectors
        ops.begin_reference_pass(p)
        ops.feed_columns(p, block, inputs, 0)
        ops.finish_reference_pass(p)
        v = ops.basis(p, block).double()  # 2 x 8
        self.assertLess((v.T @ v - span_projector(inputs, 2)).abs().max().item(), 1e-5)
        g = torch.randn(5, 8)
        ops.project(p, [block], [g], True, False)
        self.assertLess((g.double() @ v.T).abs().max().item(), 1e-5)

    def test_every_element_pair_projects(self):
        pairs = [(g, b) for g in ("float32", "bfloat16", "float16", "float64") for b in ("float32", "bfloat16")]
        pairs.append(("float64", "float64"))
        for gradient, basis in pairs:
            with self.subTest(gradient=gradient, basis=basis):
                dtype = getattr(torch, gradient)
                p = projector(rank=2, gradient=gradient, basis=basis)
                block, _ = estimated(p, dtype=dtype)
                self.assertEqual(ops.basis(p, block).dtype, getattr(torch, basis))
                g = torch.randn(6, 4).to(dtype)
                table = ops.project(p, [block], [g], True, True)
                tolerance = 1e-4 if (gradient, basis) in (("float32", "float32"), ("float64", "float64")) else 5e-2
                self.assertLess(table[0, 5].item(), tolerance)  # cosine after

    def test_diagnostics_table(self):
        p = projector(rank=2)
        block, refs = estimated(p)
        g = refs[0].clone()  # mostly inside the subspace
        table = ops.project(p, [block], [g], True, True)
        self.assertEqual(tuple(table.shape), (1, 8))
        rank, norm, projected, removed, cos_before, cos_after, scale, non_finite = table[0].tolist()
        self.assertEqual(rank, 2)
        self.assertAlmostEqual(norm, refs[0].double().norm().item(), places=4)
        self.assertAlmostEqual(projected, g.double().norm().item(), places=4)
        self.assertGreater(cos_before, 0.3)
        self.assertLess(cos_after, 1e-5)
        self.assertGreater(removed, 0.3)
        self.assertEqual((scale, non_finite), (1.0, 0.0))
        bad = torch.full((6, 4), float("nan"))
        self.assertEqual(ops.project(p, [block], [bad], False, True)[0, 7].item(), 1.0)
        self.assertEqual(tuple(ops.project(p, [block], [g], False, False).shape), (0, 8))

    def test_a_fixed_basis_is_never_due_and_a_schedule_is(self):
        fixed = projector(refresh_every=0)
        block, _ = estimated(fixed)
        every2 = projector(refresh_every=2)
        block2, _ = estimated(every2)
        for _ in range(2):
            ops.project(fixed, [block], [torch.randn(6, 4)], True, False)
            ops.project(every2, [block2], [torch.randn(6, 4)], True, False)
        self.assertFalse(ops.refresh_due(fixed))
        self.assertTrue(ops.refresh_due(every2))


class Settings(unittest.TestCase):
    def test_every_setting_reaches_the_projector(self):
        p = projector("randomized_svd", rank=3, energy="0.75", oversampling="4", power_iterations="1", seed="99",
                      rule="conflict_only", rule_options={"mode": "threshold", "base_scale": "0.5",
                                                          "several_directions": "unchanged"}, refresh_every=7,
                      gradient="bfloat16", basis="bfloat16")
        s = ops.settings(p)
        self.assertEqual(s["estimator"], "randomized_svd")
        self.assertEqual((s["estimator.rank"], s["estimator.energy"], s["estimator.oversampling"],
                          s["estimator.power_iterations"], s["estimator.seed"]), ("3", "0.75", "4", "1", "99"))
        self.assertEqual((s["rule"], s["rule.mode"], s["rule.base_scale"], s["rule.several_directions"]),
                         ("conflict_only", "threshold", "0.5", "unchanged"))
        self.assertEqual((s["refresh_every"], s["gradient_dtype"], s["basis_dtype"]), ("7", "bfloat16", "bfloat16"))

    def test_a_changed_rank_changes_the_basis(self):
        ranks = []
        for rank in (1, 3):
            p = projector(rank=rank)
            block, _ = estimated(p)
            ranks.append(ops.basis(p, block).shape[0])
        self.assertEqual(ranks, [1, 3])

    def test_former_estimator_name(self):
        self.assertEqual(ops.settings(projector("incremental_svd", rank=2))["estimator"], "frequent_directions")


REFERENCE_PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "include", "ogpsa", "README.md")
# Option names that differ from the C++ member they set.
OPTION_OF_MEMBER = {("conflict_only", "behaviour"): "mode"}


def documented_members(policy):
    """The data members the reference page's table lists for `policy` (checked against the struct
    by the C++ test docs.reference_tables)."""
    with open(REFERENCE_PAGE) as page:
        lines = page.read().split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(f"<!-- hyper-parameters of {policy} in "))
    members = []
    for line in lines[start + 3:]:
        if not line.startswith("| `"):
            break
        members.append(line.split("`")[1].split("::")[-1])
    return members


class DocumentedSettings(unittest.TestCase):
    """Every hyper-parameter of every estimator and rule can be set from Python: the parser knows
    each member the reference page documents (a value that does not parse is then refused as a bad
    value, not as an unknown setting)."""

    def test_every_documented_member_has_an_option(self):
        policies = [(name, "estimator") for name in
                    ("mean_gradient", "exact_svd", "randomized_svd", "single_pass_svd", "frequent_directions")]
        policies += [("soft", "rule"), ("conflict_only", "rule")]
        for policy, role in policies:
            for member in documented_members(policy):
                option = OPTION_OF_MEMBER.get((policy, member), member)
                with self.subTest(policy=policy, option=option):
                    given = {option: "not-a-value"}
                    with self.assertRaises(ValueError) as caught:
                        if role == "estimator":
                            torch.classes.ogpsa.Projector(policy, given, "orthogonal", {}, 1, "float32", "float32", "cpu")
                        else:
                            torch.classes.ogpsa.Projector("exact_svd", {}, policy, given, 1, "float32", "float32", "cpu")
                    self.assertIn(f"setting '{option}' must be", str(caught.exception))


class State(unittest.TestCase):
    def test_export_import_round_trip_is_bit_exact(self):
        p = projector(rank=2)
        block, _ = estimated(p)
        ops.project(p, [block], [torch.randn(6, 4)], True, False)
        state = ops.export_state(p)
        fresh = projector(rank=2)
        ops.add_block(fresh, "w", [6, 4], [4, 1], "flat")
        ops.import_state(fresh, state)
        self.assertTrue(torch.equal(ops.basis(fresh, 0), ops.basis(p, block)))
        self.assertEqual(ops.counters(fresh), ops.counters(p))
        again = ops.export_state(fresh)
        self.assertEqual(sorted(again.keys()), sorted(state.keys()))
        for key in state:
            self.assertTrue(torch.equal(again[key], state[key]), key)

    def test_a_block_without_subspace_exports_no_basis(self):
        p = projector(rank=2)
        ops.add_block(p, "w", [6, 4], [4, 1], "flat")
        self.assertEqual(sorted(ops.export_state(p).keys()),
                         ["blocks.0.extents", "refreshes", "steps", "steps_since_refresh"])
        self.assertEqual(tuple(ops.basis(p, 0).shape), (0, 24))

    def test_a_bad_state_is_refused_and_changes_nothing(self):
        p = projector(rank=2)
        block, _ = estimated(p)
        basis = ops.basis(p, block)
        good = ops.export_state(p)
        cases = {
            "no entry 'blocks.0.strengths'": {k: v for k, v in good.items() if k != "blocks.0.strengths"},
            "entry 'blocks.0.basis' must be a 2-dimensional CPU tensor of dtype Float, got Double":
                dict(good, **{"blocks.0.basis": good["blocks.0.basis"].double()}),
            "extents [6, 4], the state's are [4, 6]": dict(good, **{"blocks.0.extents": torch.tensor([4, 6])}),
            "entries this projector": dict(good, extra=torch.zeros(1)),
            "entry 'steps' is negative (-1)": dict(good, steps=torch.tensor(-1)),
        }
        for expected, state in cases.items():
            with self.subTest(expected=expected):
                with self.assertRaises(ValueError) as caught:
                    ops.import_state(p, state)
                self.assertIn("ogpsa.Projector.import_state(): ", str(caught.exception))
                self.assertIn(expected, str(caught.exception))
                self.assertTrue(torch.equal(ops.basis(p, block), basis))
        nan = dict(good, **{"blocks.0.basis": torch.full_like(good["blocks.0.basis"], float("nan"))})
        with self.assertRaisesRegex(RuntimeError, r"ogpsa::projector::restore\(\): saved subspace of block 'w' is not finite"):
            ops.import_state(p, nan)
        self.assertTrue(torch.equal(ops.basis(p, block), basis))


class Errors(unittest.TestCase):
    """Each kind of library error arrives as its Python type, with the C++ message."""

    def assertRaisesMessage(self, kind, fragments, call):
        with self.assertRaises(kind) as caught:
            call()
        for fragment in fragments:
            self.assertIn(fragment, str(caught.exception))

    def test_invalid_arguments_are_value_errors(self):
        cases = [
            (["ogpsa::exact_svd::validate(): rank must be at least 1, got 0"], lambda: projector(rank=0)),
            (["energy threshold must be in (0, 1], got 1.5"], lambda: projector(rank=None, energy="1.5")),
            (["ogpsa.Projector(): unknown estimator 'svd'"], lambda: projector("svd")),
            (["unknown rule 'orthogonally'"], lambda: projector(rule="orthogonally")),
            (["setting 'rank' must be an integer", "got '8.0'"], lambda: projector(rank="8.0")),
            (["has no setting 'rnak' (value '3')"], lambda: projector(rank=None, rnak="3")),
            (["setting 'mode' must be one of per_direction, threshold, got 'both'"],
             lambda: projector(rule="conflict_only", rule_options={"mode": "both"})),
            (["unknown gradient dtype 'float8'"], lambda: projector(gradient="float8")),
            (["a float16 basis for float32 gradients is not compiled"], lambda: projector(basis="float16")),
            (["refresh_every must be >= 1, or 0 for a fixed basis, got -2"], lambda: projector(refresh_every=-2)),
            (["device 'cuda' is not compiled"],
             lambda: torch.classes.ogpsa.Projector("exact_svd", {}, "orthogonal", {}, 1, "float32", "float32", "cuda")),
        ]
        for fragments, call in cases:
            with self.subTest(fragments[0]):
                self.assertRaisesMessage(ValueError, fragments, call)

    def test_bad_tensors_are_value_errors(self):
        p = projector(rank=2)
        block, _ = estimated(p)
        cases = [
            (["ogpsa::torch::matricized_view(): a tensor of dtype Double cannot be viewed as ogpsa float"],
             lambda: ops.project(p, [block], [torch.zeros(6, 4, dtype=torch.float64)], True, False)),
            (["ogpsa::projector::rebind(): block 'w' is row-major", "column-major"],
             lambda: ops.project(p, [block], [torch.zeros(4, 6).T], True, False)),
            (["ogpsa::projector::rebind():", "[6, 4]"], lambda: ops.project(p, [block], [torch.zeros(4, 6)], True, False)),
            (["ogpsa.Projector.project(): block 5 does not exist (1 blocks registered)"],
             lambda: ops.project(p, [5], [torch.zeros(6, 4)], True, False)),
            (["block 0 ('w') is listed twice"],
             lambda: ops.project(p, [0, 0], [torch.zeros(6, 4), torch.zeros(6, 4)], True, False)),
            (["unknown family 'diagonal'"], lambda: ops.add_block(p, "b", [3], [1], "diagonal")),
            (["duplicate block name 'w'"], lambda: ops.add_block(p, "w", [3], [1], "flat")),
        ]
        for fragments, call in cases:
            with self.subTest(fragments[0]):
                self.assertRaisesMessage(ValueError, fragments, call)

    def test_a_bad_projection_changes_nothing(self):
        p = projector(rank=2)
        block, _ = estimated(p)
        g = torch.randn(6, 4)
        before = g.clone()
        with self.assertRaises(ValueError):
            ops.project(p, [block, 3], [g, torch.zeros(1)], True, False)
        self.assertTrue(torch.equal(g, before))
        self.assertEqual(ops.counters(p)[0], 0)

    def test_state_and_numeric_errors_are_runtime_errors(self):
        p = projector(rank=2)
        block = ops.add_block(p, "w", [6, 4], [4, 1], "flat")
        self.assertRaisesMessage(RuntimeError, ["ogpsa::projector::finish_reference_pass(): no reference pass is active"],
                                 lambda: ops.finish_reference_pass(p))
        self.assertRaisesMessage(RuntimeError, ["block 'w'", "no subspace"],
                                 lambda: ops.project(p, [block], [torch.zeros(6, 4)], True, False))
        ops.begin_reference_pass(p)
        self.assertRaisesMessage(RuntimeError, ["ogpsa::projector::feed():", "'w'"],
                                 lambda: ops.feed(p, block, torch.full((6, 4), float("inf")), 0))

    def test_allocation_failure_is_a_memory_error(self):
        p = projector("frequent_directions", rank=1, sketch_width=str(2 ** 40))
        block = ops.add_block(p, "w", [6, 4], [4, 1], "flat")
        ops.begin_reference_pass(p)
        self.assertRaisesMessage(MemoryError, ["ogpsa.feed(): out of host memory"],
                                 lambda: ops.feed(p, block, torch.ones(6, 4), 0))


if __name__ == "__main__":
    unittest.main()
