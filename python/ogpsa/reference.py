"""Reference passes: feeding the capability objective's gradients without touching ``.grad``.

A refresh re-estimates the capability subspace at the current weights. The reference function
hands it losses (``pass_.feed(loss)``), whose gradients are taken with ``torch.autograd.grad`` so
that the optimizer's ``.grad`` buffers never see them, or gradients and columns computed elsewhere.
Because a reference function that calls ``backward()`` would leak reference gradients into the next
step, every registered ``.grad`` is checked afterwards (same tensor, same version counter).
"""

import collections.abc
import operator

import torch

from . import _library

ops = _library.ops


class Entry:
    """One registered parameter as a reference pass sees it: its name, tensor, and block."""

    __slots__ = ("name", "parameter", "blocks", "index")

    def __init__(self, name, parameter, blocks, index):
        self.name, self.parameter, self.blocks, self.index = name, parameter, blocks, index


class ReferencePass:
    """What a reference function is handed: ``fn(pass_)`` calls ``pass_.feed(loss)`` once per
    reference sample (``set=1`` for a second reference set), at the current weights.

    Each feed is one sample for the estimator: ``mean_gradient`` averages the samples of a set
    into one direction per set, the SVD estimators keep the top directions of all of them. With
    torch.distributed initialized, every feed is averaged across the ranks (see
    ``ogpsa.distributed``), so every rank must make the same calls. Under DDP, compute reference
    losses with ``model.module`` (or inside ``model.no_sync()``): DDP's reducer waits for a
    ``backward()`` after every synchronized forward, and a reference pass never calls one.
    """

    def __init__(self, entries, averager, others=()):
        self._entries = entries
        self._averager = averager
        self._by_name = {entry.name: entry for entry in entries}
        self._by_id = {id(entry.parameter): entry for entry in entries}
        # registered parameters whose projector is not refreshed by this pass: accepted, ignored
        self._others = {key for entry in others for key in (entry.name, id(entry.parameter))}

    @property
    def parameters(self):
        """The parameters this pass estimates subspaces for, in block order."""
        return [entry.parameter for entry in self._entries]

    @property
    def names(self):
        return [entry.name for entry in self._entries]

    def feed(self, loss, set=0):
        """Adds the gradient of scalar `loss` with respect to every parameter of the pass as one
        sample of reference set `set`; a parameter `loss` does not reach contributes zeros."""
        set = _set_index(set)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            shape = list(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
            raise ValueError(f"ogpsa: a reference loss must be a one-element tensor, got {shape}")
        if not loss.requires_grad:
            raise ValueError("ogpsa: the reference loss does not require grad (computed under "
                             "torch.no_grad(), or from frozen parameters only?)")
        gradients = torch.autograd.grad(loss, self.parameters, allow_unused=True)
        gradients = [torch.zeros_like(entry.parameter) if g is None else g
                     for entry, g in zip(self._entries, gradients)]
        self._averager.average_(gradients)
        self._feed(gradients, set)

    def feed_gradients(self, gradients, set=0):
        """Adds reference gradients computed elsewhere, ``{name or parameter: tensor}``, as one
        sample of set `set`; a parameter left out contributes zeros. The tensors are not changed."""
        set = _set_index(set)
        if not isinstance(gradients, collections.abc.Mapping):
            raise TypeError("ogpsa: feed_gradients takes a mapping {name or parameter: gradient}, "
                            f"got {type(gradients).__name__}")
        given = {}
        for key, gradient in gradients.items():
            entry = self._entry(key, "feed_gradients")
            if entry is not None:
                given[entry.name] = gradient
        ordered = []
        for entry in self._entries:
            gradient = given.get(entry.name)
            if gradient is None:
                gradient = torch.zeros_like(entry.parameter)
            elif self._averager.active():
                gradient = gradient.clone()  # averaged in place below
            ordered.append(gradient)
        self._averager.average_(ordered)
        self._feed(ordered, set)

    def feed_columns(self, parameter, columns, set=0):
        """Adds vectors of `parameter`'s target space directly, one per column of `columns`
        (dimension x m): for a right block (a Linear weight, out x in) the layer's inputs on the
        reference set, which is how GPM estimates input spaces. With torch.distributed, every
        rank's columns are fed on every rank."""
        set = _set_index(set)
        entry = self._entry(parameter, "feed_columns")
        if entry is None:
            return
        ops.feed_columns(entry.blocks.handle, entry.index, self._averager.gather_columns(columns), set)

    def _entry(self, key, where):
        """The entry of a name or parameter; None for one another projector holds."""
        entry = self._by_name.get(key) if isinstance(key, str) else self._by_id.get(id(key))
        if entry is not None:
            return entry
        if (key if isinstance(key, str) else id(key)) in self._others:
            return None
        what = repr(key) if isinstance(key, str) else f"a tensor of shape {list(getattr(key, 'shape', []))}"
        raise ValueError(f"ogpsa: {where}: {what} is not a registered parameter")

    def _feed(self, gradients, set):
        for entry, gradient in zip(self._entries, gradients):
            ops.feed(entry.blocks.handle, entry.index, _laid_out_like(gradient, entry.parameter), set)


def _set_index(set):
    try:
        return operator.index(set)
    except TypeError:
        raise TypeError(f"ogpsa: a reference set index must be an integer, got {set!r}") from None


def _laid_out_like(gradient, parameter):
    """`gradient` in the parameter's memory order when it is a tensor of the parameter's shape,
    dtype and device: a flat block reads memory order, which must mean the same element in
    reference and training gradients (autograd lays out ``.grad`` like the parameter, but
    ``autograd.grad`` results may differ). Anything else goes to C++ as it is, to be refused
    with a message naming what is wrong (a wrong dtype is not converted)."""
    if (isinstance(gradient, torch.Tensor) and gradient.shape == parameter.shape
            and gradient.dtype == parameter.dtype and gradient.device == parameter.device
            and gradient.stride() != parameter.stride()):
        return torch.empty_like(parameter).copy_(gradient)
    return gradient


class GradientMarks:
    """Each watched parameter's ``.grad`` tensor and version counter, taken before a reference
    function runs; `check` raises RuntimeError naming the first parameter whose gradient changed."""

    def __init__(self, entries):
        self._marks = [(entry, entry.parameter.grad, _version(entry.parameter.grad)) for entry in entries]

    def check(self):
        for entry, grad, version in self._marks:
            now = entry.parameter.grad
            if now is not grad or _version(now) != version:
                raise RuntimeError(
                    f"ogpsa: the reference function changed the gradient of parameter "
                    f"{entry.name!r} (did it call backward()? hand losses to pass_.feed instead); "
                    f"the reference pass was abandoned and every basis kept")


def _version(grad):
    return None if grad is None else grad._version
