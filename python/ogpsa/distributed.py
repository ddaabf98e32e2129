"""Reference data across data-parallel ranks.

Under DDP every rank already holds the all-reduced training gradient, so projecting needs no
collective; but each rank computes reference gradients on its own shard of the reference set, and
ranks that fed different gradients would estimate different bases and step differently. So,
when torch.distributed is initialized, every reference gradient is averaged across the ranks
(all_reduce SUM, then divided by the world size, as DDP does for training gradients) before it is
fed, and columns are gathered, so that every rank feeds the same data and estimates the same basis.
Every rank must then feed the same sequence (same calls, same parameters, same shapes): each feed
is a collective.
"""

import torch
import torch.distributed as dist


class Averager:
    """Averages reference data over `group` (None: the default group); a no-op in one process."""

    def __init__(self, group=None, enabled=True):
        self.group = group
        self.enabled = enabled

    def active(self):
        return (self.enabled and dist.is_available() and dist.is_initialized()
                and dist.get_world_size(self.group) > 1)

    def average_(self, tensors):
        """Replaces each tensor of `tensors` by its mean over the ranks, in place."""
        if not self.active():
            return
        world = dist.get_world_size(self.group)
        for tensor in tensors:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM, group=self.group)
            tensor.div_(world)

    def gather_columns(self, columns):
        """Every rank's columns side by side (rank order), so each rank feeds all of them; the
        ranks must hold equal shapes."""
        if not self.active():
            return columns
        columns = columns.contiguous()
        pieces = [torch.empty_like(columns) for _ in range(dist.get_world_size(self.group))]
        dist.all_gather(pieces, columns, group=self.group)
        return torch.cat(pieces, dim=1)
