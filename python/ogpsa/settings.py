"""The optimizer's ogpsa settings, from keywords and param groups to what the projector takes.

The C++ side parses and validates every hyper-parameter (a rank of 0, an energy outside (0, 1], an
unknown estimator: ValueError with its message), so Python checks only what C++ cannot see: unknown
keywords, value types, and the settings that exist only in Python (placement, the family choice,
exclusion, ``refresh_every=None``). Option values cross as decimal text, which C++ parses strictly.
"""

import dataclasses
import numbers
import operator

import torch

# The hyper-parameters of the estimator and of the rule, each with the Python type it takes.
ESTIMATOR_OPTIONS = {
    "rank": int, "energy": float, "oversampling": int, "power_iterations": int, "seed": int,
    "norm_epsilon": float, "orthogonalization_epsilon": float, "parallel_tolerance": float,
    "first_set_required": bool, "sketch_width": int, "block": int,
}
RULE_OPTIONS = {"alpha": float, "mode": str, "base_scale": float, "several_directions": str}

# What a param group may set for its own parameters, as "ogpsa_<name>".
GROUP_PREFIX = "ogpsa_"
GROUP_SETTINGS = ("estimator", "rule", "refresh_every", "basis_dtype", "family", "exclude",
                  *ESTIMATOR_OPTIONS, *RULE_OPTIONS)

PLACEMENTS = ("gradient", "update", "gradient_and_update", "micro_batches")
FAMILIES = ("flat", "left", "right", "auto")

# Only these estimators and rules support matrix-side (left/right) blocks; "auto" needs to know.
FLAT_ONLY_ESTIMATORS = ("mean_gradient",)
FLAT_ONLY_RULES = ("conflict_only",)


@dataclasses.dataclass(frozen=True)
class ProjectorSettings:
    """Everything one C++ projector is constructed with, except the gradients' dtype and device.

    Hashable: parameters whose groups resolve to equal settings share one projector."""

    estimator: str
    estimator_options: tuple  # (name, text) pairs, sorted
    rule: str
    rule_options: tuple
    refresh_every: int  # 0: a fixed basis
    basis_dtype: str

    @property
    def matrix_side(self):
        """Whether this estimator and rule support left and right blocks."""
        return self.estimator not in FLAT_ONLY_ESTIMATORS and self.rule not in FLAT_ONLY_RULES


def option_text(name, value, kind):
    """`value` of option `name` as the decimal text C++ parses; TypeError for a wrong type."""
    if kind is bool:
        if not isinstance(value, bool):
            raise TypeError(f"ogpsa: {name} must be True or False, got {value!r}")
        return "true" if value else "false"
    if kind is str:
        if not isinstance(value, str):
            raise TypeError(f"ogpsa: {name} must be a string, got {value!r}")
        return value
    if isinstance(value, bool):
        raise TypeError(f"ogpsa: {name} must be a number, got {value!r}")
    if kind is float and isinstance(value, numbers.Real):
        return repr(float(value))
    try:
        return str(operator.index(value))
    except TypeError:
        raise TypeError(f"ogpsa: {name} must be {'an integer' if kind is int else 'a number'}, "
                        f"got {value!r}") from None


def dtype_name(dtype):
    """'float32' for torch.float32 or 'float32'; the C++ side says which names it supports."""
    if isinstance(dtype, torch.dtype):
        return str(dtype).replace("torch.", "")
    if isinstance(dtype, str):
        return dtype
    raise TypeError(f"ogpsa: a dtype must be a torch.dtype or its name, got {dtype!r}")


def projector_settings(values):
    """The ProjectorSettings of `values` (setting name -> value, None for unset)."""
    def options(table):
        return tuple(sorted((name, option_text(name, values[name], kind))
                            for name, kind in table.items() if values.get(name) is not None))

    for name in ("estimator", "rule"):
        if not isinstance(values[name], str):
            raise TypeError(f"ogpsa: {name} must be a name, got {values[name]!r}")
    return ProjectorSettings(values["estimator"], options(ESTIMATOR_OPTIONS), values["rule"],
                             options(RULE_OPTIONS), refresh_interval(values["refresh_every"]),
                             dtype_name(values["basis_dtype"]))


def refresh_interval(refresh_every):
    """The C++ schedule's n: refresh_every steps, or 0 for a fixed basis (None)."""
    if refresh_every is None:
        return 0
    n = int(option_text("refresh_every", refresh_every, int))
    if n < 1:
        raise ValueError(f"ogpsa: refresh_every must be at least 1, or None for a fixed basis, "
                         f"got {refresh_every!r}")
    return n


def check_placement(placement):
    if placement not in PLACEMENTS:
        raise ValueError(f"ogpsa: unknown placement {placement!r}; expected one of {', '.join(PLACEMENTS)}")
    return placement


def split_group(group):
    """A param group's keys for the inner optimizer, and its ogpsa overrides (name -> value)."""
    inner, overrides = {}, {}
    for key, value in group.items():
        if not key.startswith(GROUP_PREFIX):
            inner[key] = value
            continue
        name = key[len(GROUP_PREFIX):]
        if name not in GROUP_SETTINGS:
            raise ValueError(f"ogpsa: unknown param group key {key!r}; a group may set "
                             + ", ".join(GROUP_PREFIX + known for known in GROUP_SETTINGS))
        overrides[name] = value
    return inner, overrides


def family_of(choice, name, parameter, settings):
    """The family of one parameter's block. `choice` is a setting, applied to a whole group:
    "left" or "right" for the weights of two or more dimensions, biases and norm scales staying
    flat (so that family="right" fits any model), "auto" the same as "right" when the estimator
    and rule support matrix-side blocks and "flat" otherwise, or "flat"; or a function of
    (name, parameter) whose answer is taken as it is. C++ rejects a name it does not know, and a
    matrix-side family on a tensor of fewer than two dimensions."""
    if callable(choice):
        choice = choice(name, parameter)
        if not isinstance(choice, str):
            raise TypeError(f"ogpsa: the family of parameter {name!r} must be a name, got {choice!r}")
        return choice
    if not isinstance(choice, str):
        raise TypeError(f"ogpsa: family must be a name or a function, got {choice!r}")
    if choice == "auto":
        choice = "right" if settings.matrix_side else "flat"
    return choice if choice not in ("left", "right") or parameter.dim() >= 2 else "flat"


class Exclusion:
    """Which parameters are stepped but never projected: None/False (none), True (all), names,
    or a function of (name, parameter) returning True to exclude."""

    def __init__(self, value):
        self.names = frozenset()
        self._predicate = None
        if value is None or isinstance(value, bool):
            self._predicate = (lambda name, parameter: True) if value else (lambda name, parameter: False)
        elif callable(value):
            self._predicate = value
        else:
            names = [value] if isinstance(value, str) else list(value)
            if not all(isinstance(name, str) for name in names):
                raise TypeError(f"ogpsa: exclude must be parameter names or a function, got {value!r}")
            self.names = frozenset(names)

    def __call__(self, name, parameter):
        return name in self.names if self._predicate is None else bool(self._predicate(name, parameter))
