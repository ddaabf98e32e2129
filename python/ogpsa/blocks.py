"""One C++ projector and the parameters registered in it.

The C++ projector holds one gradient dtype, one device and one set of hyper-parameters, so the
optimizer keeps one per combination its param groups need; this class pairs it with its
parameters, in block order, and with what Python must know between calls (each block's rank, and
whether a reference pass is open).
"""

from . import _library
from .settings import dtype_name

ops = _library.ops


class Blocks:
    """The parameters of one projector; `handle` is the `torch.classes.ogpsa.Projector`."""

    def __init__(self, settings, dtype, device):
        self.projector_settings = settings
        self.dtype = dtype
        self.device = device
        self.handle = _library.Projector(
            settings.estimator, dict(settings.estimator_options), settings.rule,
            dict(settings.rule_options), settings.refresh_every, dtype_name(dtype),
            settings.basis_dtype, device.type)
        self.names = []
        self.parameters = []
        self.ranks = []  # per block; 0 until a reference pass gives it a subspace
        self.pass_open = False

    def add(self, name, parameter, family):
        """Registers `parameter` as the next block (C++ checks the family against its shape)."""
        ops.add_block(self.handle, name, list(parameter.shape), list(parameter.stride()), family)
        self.names.append(name)
        self.parameters.append(parameter)
        self.ranks.append(0)

    def begin_reference_pass(self):
        ops.begin_reference_pass(self.handle)
        self.pass_open = True

    def abandon_reference_pass(self):
        if self.pass_open:
            self.pass_open = False
            ops.abandon_reference_pass(self.handle)

    def finish_reference_pass(self):
        """Commits the pass; returns per block [rank, dropped, captured_energy] as lists."""
        rows = ops.finish_reference_pass(self.handle).tolist()
        self.pass_open = False
        self.ranks = [int(row[0]) for row in rows]
        return rows

    def project(self, indices, tensors, count_step, diagnostics):
        """Projects `tensors` (the blocks `indices`) in place in one backend call; returns the
        diagnostics rows (empty without diagnostics)."""
        return ops.project(self.handle, indices, tensors, count_step, diagnostics).tolist()

    def count_step(self):
        ops.count_step(self.handle)

    def refresh_due(self):
        return bool(ops.refresh_due(self.handle))

    def ready(self):
        return bool(ops.ready(self.handle))

    def settings(self):
        return dict(ops.settings(self.handle))

    def basis(self, index):
        return ops.basis(self.handle, index)

    def export_state(self):
        return dict(ops.export_state(self.handle))

    def import_state(self, state):
        ops.import_state(self.handle, state)
        self.ranks = [int(state[f"blocks.{i}.basis"].shape[0]) if f"blocks.{i}.basis" in state else 0
                      for i in range(len(self.parameters))]

    def save(self, path):
        ops.save(self.handle, str(path))

    def load(self, path):
        ops.load(self.handle, str(path))
        self.ranks = [int(self.basis(i).shape[0]) for i in range(len(self.parameters))]


def finish_all(projectors):
    """Commits an open reference pass on every projector, or on none: when one refuses its pass
    (a numeric error, say), those already committed get their previous state back and the others
    abandon theirs, so a refresh changes every basis or none. Returns each projector's rows."""
    before = [blocks.export_state() for blocks in projectors] if len(projectors) > 1 else []
    results = []
    try:
        for blocks in projectors:
            results.append(blocks.finish_reference_pass())
    except BaseException:
        for blocks, state in zip(projectors[:len(results)], before):
            blocks.import_state(state)
        for blocks in projectors:
            blocks.abandon_reference_pass()
        raise
    return results


def import_all(projectors, states):
    """Imports one state per projector, all or nothing (C++ makes each import all or nothing)."""
    before = [blocks.export_state() for blocks in projectors]
    done = 0
    try:
        for blocks, state in zip(projectors, states):
            blocks.import_state(state)
            done += 1
    except BaseException:
        for blocks, state in zip(projectors[:done], before):
            blocks.import_state(state)
        raise
