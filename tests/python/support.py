"""What the Python tests share: importing ogpsa (skipping when its extension was not built) and
independent reference computations in torch.linalg, in float64."""

import os
import sys
import unittest

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
# The repository's package, for runs without PYTHONPATH=python (an installed package comes first).
sys.path.append(os.path.join(os.path.dirname(os.path.dirname(HERE)), "python"))


def import_ogpsa():
    """The ogpsa package, or None and the reason when its compiled extension cannot be found.
    Any other import error (a broken package or extension) propagates: it is a failure."""
    try:
        import ogpsa
    except ImportError as error:
        if error.name == "ogpsa._ogpsa_ops":
            return None, f"the ogpsa extension was not found: {error}"
        raise
    return ogpsa, None


ogpsa, MISSING = import_ogpsa()


def require_ogpsa():
    """A test module's setUpModule: skips the module, with the reason, when ogpsa is missing."""
    if ogpsa is None:
        raise unittest.SkipTest(MISSING)


def vec(tensor):
    """A tensor's elements in memory order (what a flat block sees), as float64."""
    return tensor.detach().contiguous().reshape(-1).double()


def top_left_singular(columns, k):
    """The top-k left singular vectors of a matrix whose columns are the data (d x k)."""
    u, _, _ = torch.linalg.svd(columns.double(), full_matrices=False)
    return u[:, :k]


def remove(basis, vector):
    """vector - U (U^T vector): the orthogonal projection onto the complement of U's columns."""
    return vector - basis @ (basis.T @ vector)


def same_subspace(a, b, tolerance):
    """True when the orthonormal columns of a and b span the same subspace, up to `tolerance`
    in the sines of their principal angles."""
    if a.shape[1] != b.shape[1]:
        return False
    cosines = torch.linalg.svdvals(a.double().T @ b.double())
    return bool((1 - cosines.min()) < tolerance)


def reference_of(gradients, set=0):
    """A reference function feeding each {name: gradient} mapping of `gradients` as one sample."""
    def feed(pass_):
        for sample in gradients:
            pass_.feed_gradients(sample, set=set)
    return feed


def held(settings, name):
    """The value the C++ side reports for hyper-parameter `name` (its key may be qualified)."""
    keys = [key for key in settings if key == name or key.split(".")[-1] == name]
    if len(keys) != 1:
        raise AssertionError(f"{name!r} is not reported once in the settings {settings}")
    return settings[keys[0]]


def has_operator(name):
    """Whether the loaded extension registers torch.ops.ogpsa.<name>."""
    try:
        getattr(torch.ops.ogpsa, name)
    except (AttributeError, RuntimeError):
        return False
    return True


def _weights_only_reads_floats():
    """Whether torch.load(weights_only=True) reads Python floats: torch 1.13's restricted
    unpickler has no BINFLOAT, so on it no optimizer's param groups (lr, betas) load that way."""
    import io
    buffer = io.BytesIO()
    torch.save({"lr": 0.5}, buffer)
    buffer.seek(0)
    try:
        torch.load(buffer, weights_only=True)
    except Exception:  # torch raises pickle.UnpicklingError, wrapped differently across versions
        return False
    return True


WEIGHTS_ONLY_READS_FLOATS = _weights_only_reads_floats()
