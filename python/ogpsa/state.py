"""The optimizer's ogpsa state in a torch state_dict: plain tensors, ints, strings, lists, dicts.

It sits beside the inner optimizer's ``state`` and ``param_groups`` under the key ``"ogpsa"``, so
that ``torch.load(weights_only=True)`` reads it (no pickled objects), and outside ``state``, where
``Optimizer.load_state_dict`` would cast floating tensors to each parameter's dtype: fp32 bases of
bf16 parameters stay fp32. Each projector's entry is its ``export_state`` (counters, bases,
strengths, captured energies) and, for the reader, its block names and settings.
"""

KEY = "ogpsa"
FORMAT = "ogpsa.optimizer_state"
VERSION = 1


def pack(projectors, placement):
    return {
        "format": FORMAT,
        "version": VERSION,
        "placement": placement,
        "projectors": [{"names": list(blocks.names),
                        "settings": blocks.settings(),
                        "state": blocks.export_state()} for blocks in projectors],
    }


def unpack(entry, projectors):
    """The per-projector states of `entry`, checked against these projectors' blocks.

    Raises ValueError naming the field when `entry` was not written by `pack` for parameters
    registered the same way (same projectors, same block names in the same order)."""
    if not isinstance(entry, dict) or entry.get("format") != FORMAT:
        raise ValueError(f"ogpsa: the state dict's {KEY!r} entry is not an ogpsa optimizer state "
                         f"(format {entry.get('format') if isinstance(entry, dict) else type(entry).__name__!r})")
    if entry.get("version") != VERSION:
        raise ValueError(f"ogpsa: the state dict's {KEY!r} entry has version {entry.get('version')!r}, "
                         f"this package reads version {VERSION}")
    saved = entry.get("projectors")
    if not isinstance(saved, list) or len(saved) != len(projectors):
        raise ValueError(f"ogpsa: the state dict holds {len(saved) if isinstance(saved, list) else 'no'} "
                         f"projectors, this optimizer {len(projectors)} (one per dtype, device and "
                         f"settings of its param groups)")
    for i, (item, blocks) in enumerate(zip(saved, projectors)):
        if item.get("names") != blocks.names:
            raise ValueError(f"ogpsa: projector {i} of the state dict has blocks {item.get('names')}, "
                             f"this optimizer's has {blocks.names}")
    return [item["state"] for item in saved]
