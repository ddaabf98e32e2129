"""What the projector reports, as per-parameter records keyed by parameter name.

The C++ callbacks (``on_projection``, ``on_refresh``, ``on_degenerate``, ``on_non_finite``) are
surfaced as plain rows of numbers by the extension; these records give the rows names.
Projections are measured only when the optimizer was built with ``diagnostics=True`` (measuring
costs one more pass over each gradient); refreshes are always recorded (the numbers come free).
"""

import typing


class Projection(typing.NamedTuple):
    """One parameter's last projection: |g| before and after, the fraction of |g| the rule removed,
    the cosine between g and the subspace before and after, the scale the threshold mode applied,
    and whether g held NaN/Inf (then it was left as it is)."""

    name: str
    rank: int
    gradient_norm: float
    projected_norm: float
    removed_fraction: float
    cosine_before: float
    cosine_after: float
    scale: float
    non_finite: bool


class Refresh(typing.NamedTuple):
    """One parameter's last refresh: the rank kept, the directions a fixed rank asked for but the
    data did not have (a degenerate block), and the fraction of the reference energy captured."""

    name: str
    rank: int
    dropped: int
    captured_energy: float


def projections(names, rows):
    """{name: Projection} from the extension's [n, 8] rows for the blocks named `names`."""
    return {name: Projection(name, int(row[0]), *row[1:7], bool(row[7])) for name, row in zip(names, rows)}


def refreshes(names, rows):
    """{name: Refresh} from the extension's [blocks, 3] rows."""
    return {name: Refresh(name, int(row[0]), int(row[1]), row[2]) for name, row in zip(names, rows)}
