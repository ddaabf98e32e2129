"""`ProjectedOptimizer`: a torch.optim.Optimizer whose safety updates stay out of the capability
subspace (OGPSA, Sun et al., arXiv 2602.07892), the Python face of
``ogpsa::torch::projected_optimizer``.

It wraps an inner optimizer built from the same param groups and shares its ``param_groups`` and
``state``, so LR schedulers, ``GradScaler.unscale_`` and trainers that read or write them work as
on the inner optimizer; ``step()`` refreshes the subspace when due (running the reference function
at the current weights), projects, and steps.
"""

import contextlib
import functools
import os
import weakref

import torch

from . import diagnostics as _diagnostics
from . import settings as _settings
from . import state as _state
from .blocks import Blocks, finish_all, import_all
from .distributed import Averager
from .reference import Entry, GradientMarks, ReferencePass


class ProjectedOptimizer(torch.optim.Optimizer):
    """An optimizer whose steps are projected onto the orthogonal complement of each registered
    parameter's capability subspace.

    ``params``: tensors, ``(name, tensor)`` pairs (``model.named_parameters()``, whose names appear
    in messages and diagnostics), or param groups of either; a group may override any ogpsa
    setting for its parameters as ``ogpsa_<name>`` (``ogpsa_rank``, ``ogpsa_family``,
    ``ogpsa_exclude``, ...). ``optimizer``: the inner optimizer's class (or any callable taking
    param groups and ``optimizer_kwargs``), built from the groups without their ogpsa keys.

    The ogpsa settings, with the published method as the default (hyper-parameters left at None
    take the C++ defaults; see the reference of the estimators and rules):

    - ``estimator``: mean_gradient | exact_svd | randomized_svd | single_pass_svd |
      frequent_directions, with ``rank``, ``energy``, ``oversampling``, ``power_iterations``,
      ``seed``, ``norm_epsilon``, ``orthogonalization_epsilon``, ``parallel_tolerance``,
      ``first_set_required``, ``sketch_width``, ``block`` (those the estimator has);
    - ``rule``: orthogonal | soft (``alpha``) | conflict_only (``mode``: per_direction | threshold,
      ``base_scale``, ``several_directions``: project | unchanged);
    - ``family``: flat | left | right (for the weights of two or more dimensions; the others stay
      flat) | auto (right when the estimator and rule support it, else flat) | a function
      (name, parameter) -> family, taken as it is;
    - ``refresh_every``: steps between refreshes, None for a basis estimated once;
    - ``placement``: gradient (the accumulated gradients, in ``step()`` or in ``project()``, which
      you may call before clipping) | update (the step the inner optimizer took: with Adam an
      orthogonal gradient does not give an orthogonal step) | gradient_and_update |
      micro_batches (each ``backward()``'s gradient, by a tensor hook, before accumulation, as the
      published code does; call ``refresh()`` before the first ``backward()``);
    - ``basis_dtype``: float32 | bfloat16, whatever the parameters' dtype;
    - ``exclude``: names or a function (name, parameter) -> bool of parameters stepped but never
      projected; parameters that do not require grad are never registered;
    - ``diagnostics``: measure every projection; ``last_projection`` holds each parameter's last
      (``last_refresh`` each parameter's last refresh, always);
    - ``process_group``, ``average_reference``: with torch.distributed initialized, reference
      gradients are averaged over ``process_group`` (None: the default group) before they are
      fed, unless ``average_reference`` is False.

    Any other keyword goes to the inner optimizer. One C++ projector serves each combination of
    dtype, device and settings the groups need. Bad values raise ValueError naming them (from C++
    for the hyper-parameters), wrong types TypeError.
    """

    def __init__(self, params, optimizer=torch.optim.AdamW, *, estimator="mean_gradient", rank=None,
                 energy=None, oversampling=None, power_iterations=None, seed=None, norm_epsilon=None,
                 orthogonalization_epsilon=None, parallel_tolerance=None, first_set_required=None,
                 sketch_width=None, block=None, rule="orthogonal", alpha=None, mode=None,
                 base_scale=None, several_directions=None, family="flat", refresh_every=30,
                 placement="gradient", basis_dtype="float32", exclude=None, diagnostics=False,
                 process_group=None, average_reference=True, **optimizer_kwargs):
        if isinstance(optimizer, torch.optim.Optimizer) or not callable(optimizer):
            raise TypeError(f"ogpsa: optimizer must be an optimizer class, got {optimizer!r}")
        arguments = dict(locals())
        self._defaults = {name: arguments[name] for name in _settings.GROUP_SETTINGS}
        self._placement = _settings.check_placement(placement)
        self._diagnostics = bool(diagnostics)
        self._averager = Averager(process_group, bool(average_reference))
        self._projectors = {}  # (settings, dtype, device) -> Blocks, in creation order
        self._entries = []  # every registered parameter, in registration order
        self._snapshots = {}  # update placement: id(parameter) -> its weights before the inner step
        self._hooks = []
        self._reference = None
        self._projected = False  # the current gradients were projected
        self._in_reference_pass = False
        self.last_projection = {}
        self.last_refresh = {}

        groups = _as_groups(params)
        split = [self._split(group, index) for index, group in enumerate(groups)]
        self._inner = optimizer([inner for inner, _ in split], **optimizer_kwargs)
        self._sharing = False  # the base constructor adds its groups to a list dropped below
        super().__init__([dict(group) for group in self._inner.param_groups], self._inner.defaults)
        self._share()
        self._sharing = True

        for _, plan in split:
            self._register(plan, self._projectors, self._entries)
        _check_known(_settings.Exclusion(exclude).names, [name for _, (names, _, _) in split for name in names],
                     "exclude")
        if not self._entries:
            raise ValueError("ogpsa: no parameter to project (none requires grad, or all are excluded)")
        self._install_hooks(self._entries)
        weakref.finalize(self, _remove_hooks, self._hooks)

    # --- the torch.optim.Optimizer interface

    def step(self, closure=None):
        """Evaluates `closure` (if given, once, with grad enabled), then takes one projected step:
        ``project()`` unless it was called for these gradients, the inner step, the update's
        projection with an update placement; under micro_batches the inner step, then the
        refresh when due, at the new weights. With an update placement, if anything raises after
        the inner step began, every parameter gets its old weights back, bit for bit (the inner
        optimizer's own state, Adam's moments, is not rolled back). Returns the closure's loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
            self._projected = False  # its backward() made new gradients
        if not self._projected:
            self.project()
        self._projected = False
        if self._placement == "micro_batches":
            self._inner.step()
            for blocks in self._blocks():
                blocks.count_step()
            self._refresh_if_due()
        elif self._placement == "gradient":
            self._inner.step()
        else:
            self._step_projecting_update(count_step=self._placement == "update")
        return loss

    def zero_grad(self, set_to_none=None):
        """The inner optimizer's zero_grad; the next gradients are new, not yet projected."""
        self._projected = False
        if set_to_none is None:
            self._inner.zero_grad()
        else:
            self._inner.zero_grad(set_to_none=set_to_none)

    def add_param_group(self, param_group):
        """Adds a group (with its own ogpsa_ settings) to the inner optimizer and registers its
        parameters; their blocks have no subspace yet, so the next step refreshes first (under
        micro_batches call ``refresh()`` before their next ``backward()``). All or nothing: its
        registration is tried on scratch projectors first."""
        if not self._sharing:
            return super().add_param_group(param_group)
        inner, plan = self._split(param_group, len(self.param_groups))
        self._register(plan, {}, [])
        self._inner.add_param_group(inner)
        added = self._register(plan, self._projectors, self._entries)
        self._install_hooks(added)

    def state_dict(self):
        """The inner optimizer's state dict and, under ``"ogpsa"``, the projectors' state as plain
        tensors, ints, strings, lists and dicts (readable by ``torch.load(weights_only=True)``)."""
        state_dict = self._inner.state_dict()
        state_dict[_state.KEY] = _state.pack(self._blocks(), self._placement)
        return state_dict

    def load_state_dict(self, state_dict):
        """Restores a ``state_dict()`` of an optimizer with the same parameters, registered the
        same way. All or nothing; bases keep their dtype. Raises ValueError when it has no
        ``"ogpsa"`` entry or that entry does not match, and what the C++ import raises."""
        state_dict = dict(state_dict)
        entry = state_dict.pop(_state.KEY, None)
        if entry is None:
            raise ValueError(f"ogpsa: the state dict has no {_state.KEY!r} entry "
                             "(not written by ProjectedOptimizer.state_dict()?)")
        projectors = self._blocks()
        states = _state.unpack(entry, projectors)
        before = [blocks.export_state() for blocks in projectors]
        import_all(projectors, states)
        try:
            self._inner.load_state_dict(state_dict)
        except BaseException:
            import_all(projectors, before)
            raise
        self._share()  # torch's load_state_dict replaced the inner optimizer's lists
        self._projected = False

    # --- projection

    def project(self):
        """Refreshes the subspace when due, then projects the accumulated gradients in place (with
        the update placement only the refresh happens here; under micro_batches nothing). Call it
        after the last ``backward()`` and before clipping for the published order; ``step()``
        calls it otherwise. Raises RuntimeError when these gradients were already projected."""
        if self._projected:
            raise RuntimeError("ogpsa: the gradients of this step were already projected; call "
                               "step() or zero_grad() first")
        if self._placement != "micro_batches":
            self._refresh_if_due()
            if self._placement != "update":
                self._project_gradients()
        self._projected = True

    def set_reference(self, fn):
        """Sets the reference function, ``fn(pass_)``, run at the current weights whenever a
        refresh is due; it feeds ``pass_`` (see ``ogpsa.ReferencePass``)."""
        if not callable(fn):
            raise TypeError(f"ogpsa: the reference must be a function of the pass, got {fn!r}")
        self._reference = fn

    def refresh(self):
        """Runs the reference function now and commits every projector's new subspaces."""
        self._run_reference(self._blocks())

    def reference_pass(self):
        """``with opt.reference_pass() as pass_:`` feeds a refresh of every projector from a
        hand-written loop; leaving the block commits it, an exception abandons it (bases kept)."""
        return self._pass(self._blocks())

    def refresh_due(self):
        """True when the next ``step()`` (or ``project()``) runs the reference function first."""
        return any(blocks.refresh_due() for blocks in self._blocks())

    # --- inspection and checkpoints

    @property
    def inner(self):
        """The wrapped optimizer."""
        return self._inner

    @property
    def placement(self):
        return self._placement

    @property
    def names(self):
        """The registered parameters' names, in registration order."""
        return [entry.name for entry in self._entries]

    def basis(self, parameter):
        """A copy of the basis of `parameter` (name or tensor): rank x dimension, one direction
        per row, in the basis dtype; 0 rows before any estimate."""
        entry = self._entry(parameter)
        return entry.blocks.basis(entry.index)

    def settings(self, parameter):
        """Every hyper-parameter of the projector of `parameter`, as the C++ side holds it."""
        return self._entry(parameter).blocks.settings()

    def save_ogpsa(self, path):
        """Writes the projectors' state as the C++ checkpoint file (atomically), readable by
        ``ogpsa::load_checkpoint``: one path per projector (a single path when there is one)."""
        for blocks, target in zip(self._blocks(), self._checkpoint_paths(path)):
            blocks.save(target)

    def load_ogpsa(self, path):
        """Reads what ``save_ogpsa`` (or a C++ trainer) wrote; all projectors or none."""
        projectors = self._blocks()
        paths = self._checkpoint_paths(path)
        before = [blocks.export_state() for blocks in projectors]
        done = 0
        try:
            for blocks, source in zip(projectors, paths):
                blocks.load(source)
                done += 1
        except BaseException:
            import_all(projectors[:done], before[:done])
            raise
        self._projected = False

    # --- internals

    def _share(self):
        self.param_groups = self._inner.param_groups
        self.state = self._inner.state
        self.defaults = self._inner.defaults

    def _blocks(self):
        return list(self._projectors.values())

    def _split(self, group, index):
        """The group for the inner optimizer, and what registering its parameters needs."""
        inner, overrides = _settings.split_group(group)
        names, tensors = _named(inner.get("params"), index)
        inner["params"] = tensors
        return inner, (names, tensors, overrides)

    def _register(self, plan, projectors, entries):
        """Registers a group's projected parameters into `projectors`, appending to `entries`;
        returns the new entries. With empty containers, a dry run that C++ still validates."""
        names, tensors, overrides = plan
        values = {**self._defaults, **overrides}
        settings = _settings.projector_settings(values)
        exclusion = _settings.Exclusion(values["exclude"])
        if "exclude" in overrides:
            _check_known(exclusion.names, names, "ogpsa_exclude")
        known = {id(entry.parameter): entry.name for entry in self._entries + entries}
        added = []
        for name, parameter in zip(names, tensors):
            if not parameter.requires_grad or exclusion(name, parameter):
                continue
            if id(parameter) in known:
                raise ValueError(f"ogpsa: parameter {name!r} is the same tensor as {known[id(parameter)]!r} "
                                 "(tied weights): pass it once")
            if name in known.values():
                raise ValueError(f"ogpsa: two parameters are named {name!r}")
            key = (settings, parameter.dtype, parameter.device)
            if key not in projectors:
                projectors[key] = Blocks(settings, parameter.dtype, parameter.device)
            blocks = projectors[key]
            blocks.add(name, parameter, _settings.family_of(values["family"], name, parameter, settings))
            added.append(Entry(name, parameter, blocks, len(blocks.names) - 1))
            known[id(parameter)] = name
        entries.extend(added)
        return added

    def _entry(self, parameter):
        by_name = isinstance(parameter, str)
        for entry in self._entries:
            if (entry.name == parameter) if by_name else (entry.parameter is parameter):
                return entry
        raise ValueError(f"ogpsa: {parameter!r} is not a registered parameter"
                         if isinstance(parameter, str) else "ogpsa: the tensor is not a registered parameter")

    def _checkpoint_paths(self, path):
        paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
        if len(paths) != len(self._projectors):
            raise ValueError(f"ogpsa: this optimizer holds {len(self._projectors)} projectors (one per "
                             f"dtype, device and settings of its param groups), each its own checkpoint "
                             f"file: pass {len(self._projectors)} paths, got {len(paths)}")
        return paths

    def _refresh_if_due(self):
        due = [blocks for blocks in self._blocks() if blocks.refresh_due()]
        if due:
            self._run_reference(due)

    def _run_reference(self, projectors):
        if self._reference is None:
            raise RuntimeError("ogpsa: the subspace needs a refresh but no reference function is set: "
                               "call set_reference(fn), or feed a pass with `with opt.reference_pass() "
                               "as pass_:` when refresh_due()")
        with self._pass(projectors) as pass_:
            self._reference(pass_)

    @contextlib.contextmanager
    def _pass(self, projectors):
        """One reference pass over `projectors`: begun on each, committed on all or none."""
        marks = GradientMarks(self._entries)
        inside = [entry for entry in self._entries if entry.blocks in projectors]
        others = [entry for entry in self._entries if entry.blocks not in projectors]
        self._in_reference_pass = True
        try:
            for blocks in projectors:
                blocks.begin_reference_pass()
            with torch.enable_grad():
                yield ReferencePass(inside, self._averager, others)
            marks.check()
            rows = finish_all(projectors)
        except BaseException:
            for blocks in projectors:
                blocks.abandon_reference_pass()
            raise
        finally:
            self._in_reference_pass = False
        self.last_refresh = {}
        for blocks, block_rows in zip(projectors, rows):
            self.last_refresh.update(_diagnostics.refreshes(blocks.names, block_rows))

    def _project_gradients(self):
        """Projects every defined gradient, one backend call per projector, and counts a step."""
        self.last_projection = {}
        for blocks in self._blocks():
            indices = [i for i, p in enumerate(blocks.parameters) if p.grad is not None]
            if not indices:
                blocks.count_step()
                continue
            rows = blocks.project(indices, [blocks.parameters[i].grad for i in indices], True, self._diagnostics)
            self._record([blocks.names[i] for i in indices], rows)

    def _step_projecting_update(self, count_step):
        """The inner step, then param = old + P(param - old) for every parameter with a gradient
        and a non-empty subspace; every parameter with a gradient gets its old weights back if
        anything raises from the inner step on."""
        self.last_projection = {}
        with torch.no_grad():
            stepped = [entry for entry in self._entries if entry.parameter.grad is not None]
            for entry in stepped:
                self._snapshot(entry.parameter)
            try:
                self._inner.step()
                for blocks in self._blocks():
                    self._project_update(blocks, [entry for entry in stepped if entry.blocks is blocks])
            except BaseException:
                for entry in stepped:
                    entry.parameter.copy_(self._snapshots[id(entry.parameter)])
                raise
        if count_step:
            for blocks in self._blocks():
                blocks.count_step()

    def _snapshot(self, parameter):
        buffer = self._snapshots.get(id(parameter))
        if buffer is None:
            buffer = self._snapshots[id(parameter)] = torch.empty_like(parameter)
        buffer.copy_(parameter)

    def _project_update(self, blocks, stepped):
        moving = [entry for entry in stepped if blocks.ranks[entry.index] > 0]
        if not moving:
            return
        for entry in moving:
            entry.parameter.sub_(self._snapshots[id(entry.parameter)])
        rows = blocks.project([entry.index for entry in moving], [entry.parameter for entry in moving],
                              False, self._diagnostics)
        for entry in moving:
            entry.parameter.add_(self._snapshots[id(entry.parameter)])
        self._record([entry.name for entry in moving], rows)

    def _install_hooks(self, entries):
        if self._placement != "micro_batches":
            return
        this = weakref.ref(self)
        for entry in entries:
            self._hooks.append(entry.parameter.register_hook(functools.partial(_micro_batch_hook, this, entry)))

    def _project_micro_batch(self, entry, gradient):
        """One backward()'s gradient of `entry`, projected in a new buffer laid out like the
        parameter (autograd's may be expanded or transposed)."""
        if not entry.blocks.ready():
            raise RuntimeError(f"ogpsa: parameter {entry.name!r} received a gradient before any "
                               "subspace was estimated: with placement='micro_batches' call refresh() "
                               "before the first backward()")
        with torch.no_grad():
            projected = torch.empty_like(entry.parameter).copy_(gradient)
            rows = entry.blocks.project([entry.index], [projected], False, self._diagnostics)
        self._record([entry.name], rows)
        return projected

    def _record(self, names, rows):
        if self._diagnostics:
            self.last_projection.update(_diagnostics.projections(names, rows))


def _micro_batch_hook(optimizer, entry, gradient):
    """A registered parameter's tensor hook: projects each backward()'s gradient; reference passes
    and a collected optimizer leave it alone. Holds the optimizer weakly, so hooks do not keep it."""
    optimizer = optimizer()
    if optimizer is None or optimizer._in_reference_pass:
        return None
    return optimizer._project_micro_batch(entry, gradient)


def _remove_hooks(handles):
    for handle in handles:
        handle.remove()


def _as_groups(params):
    """`params` as a list of param-group dicts (copies: the caller's are left alone)."""
    if isinstance(params, torch.Tensor):
        raise TypeError("ogpsa: params must be an iterable of tensors, (name, tensor) pairs or param "
                        "groups, got a tensor")
    items = list(params)
    if not items:
        raise ValueError("ogpsa: got an empty parameter list")
    if isinstance(items[0], dict):
        return [dict(group) for group in items]
    return [{"params": items}]


def _named(params, group_index):
    """The names and tensors of a group's params: tensors, or (name, tensor) pairs. Unnamed
    tensors are called 'param_groups.<group>.params.<i>'."""
    if params is None:
        raise ValueError(f"ogpsa: param group {group_index} has no 'params'")
    items = [params] if isinstance(params, torch.Tensor) else list(params)
    names, tensors = [], []
    for i, item in enumerate(items):
        if isinstance(item, torch.Tensor):
            names.append(f"param_groups.{group_index}.params.{i}")
            tensors.append(item)
        elif isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str) \
                and isinstance(item[1], torch.Tensor):
            names.append(item[0])
            tensors.append(item[1])
        else:
            raise TypeError(f"ogpsa: param group {group_index} holds {type(item).__name__!r}: expected "
                            "tensors or (name, tensor) pairs")
    return names, tensors


def _check_known(excluded, names, key):
    unknown = sorted(set(excluded) - set(names))
    if unknown:
        raise ValueError(f"ogpsa: {key} names parameters that do not exist: {', '.join(map(repr, unknown))}")
