"""Which rows each batch holds, per epoch, rank and worker: pure numpy, no torch.

An epoch is one order of the loader's rows (``epoch_order``), cut into global batches of
``batch_size``. Global batch ``g`` goes to rank ``g % world_size`` as that rank's batch
``g // world_size``; a rank's batches are dealt to its DataLoader workers round-robin, in
the order torch's DataLoader collects them. So a rank sees the same batches in the same
order whatever its number of workers, and resuming needs only (epoch, batches done).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def epoch_order(rows: int, seed: int | None, epoch: int, buffer: int | None = None) -> np.ndarray | None:
    """Positions ``0..rows-1`` in this epoch's order; None means table order (no shuffle).

    ``seed`` None: no shuffle. ``buffer`` None: a full permutation keyed by
    ``(seed, epoch)``. ``buffer=n``: rows are cut into windows of ``n`` consecutive rows,
    the windows come in a random order and rows are permuted within each window, so a
    batch reads from one stretch of the table (locality) at the cost of a weaker shuffle.
    """
    if seed is None:
        return None
    rng = np.random.default_rng([seed, epoch])
    if buffer is None or buffer >= rows:
        return rng.permutation(rows)
    windows = -(-rows // buffer)
    rank_of_window = np.empty(windows, dtype=np.int64)
    rank_of_window[rng.permutation(windows)] = np.arange(windows)
    window = np.arange(rows, dtype=np.int64) // buffer
    return np.lexsort((rng.random(rows), rank_of_window[window]))


@dataclass(frozen=True)
class Layout:
    """How ``rows`` rows split into the batches of one rank."""

    rows: int
    batch_size: int
    rank: int = 0
    world_size: int = 1
    drop_last: bool = False

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, not {self.batch_size}")
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is outside world size {self.world_size}")

    @property
    def batches(self) -> int:
        """Batches this rank yields per epoch.

        Without ``drop_last`` every row is in exactly one batch of one rank; ranks differ
        by at most one batch and the last batch may be short. With it every batch is
        full and every rank yields the same number, so DDP collectives line up.
        """
        if self.drop_last:
            return self.rows // self.batch_size // self.world_size
        total = -(-self.rows // self.batch_size)
        return max(0, -(-(total - self.rank) // self.world_size))

    def span(self, j: int) -> tuple[int, int]:
        """``[start, stop)`` in the epoch order of this rank's batch ``j``."""
        g = j * self.world_size + self.rank
        start = g * self.batch_size
        return start, min(start + self.batch_size, self.rows)

    def rows_of(self, j: int, order: np.ndarray | None) -> np.ndarray:
        start, stop = self.span(j)
        if order is None:
            return np.arange(start, stop, dtype=np.int64)
        return order[start:stop]

    def rows_total(self) -> int:
        """Rows this rank yields per epoch: all its batches are full but maybe the last."""
        if self.batches == 0:
            return 0
        start, stop = self.span(self.batches - 1)
        return (self.batches - 1) * self.batch_size + stop - start


def worker_batches(batches: int, start: int, worker: int, workers: int) -> range:
    """This worker's batches of a rank, from batch ``start`` on: ``start + worker``,
    ``start + worker + workers``, ... so torch's round-robin returns them in order."""
    if not 0 <= worker < workers:
        raise ValueError(f"worker {worker} is outside {workers} workers")
    return range(start + worker, batches, workers)
