"""The PyTorch side: batches as dicts of tensors, workers, devices, resume.

``TorchLoader`` is a ``torch.utils.data.IterableDataset``. Iterated directly it runs
its own DataLoader workers, keeps batches in order, moves them to the device and
counts what it delivered (``state_dict``). Handed to a torch DataLoader
(``batch_size=None``) each worker yields its share. Either way a worker re-opens the
store from the plan's URL and reads the pinned fragments: nothing but the plan (row
positions, column specs) is pickled.

Its own workers send each batch as one shared-memory buffer plus a layout (torch passes
one file descriptor per tensor storage, which costs more than the copy for a batch of
many small tensors); the iterating process turns it back into views of that buffer.
"""

from __future__ import annotations

import copy
import os
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from .options import Options
from .order import Layout, epoch_order, worker_batches
from .plan import Plan
from .read import Reader

T = TypeVar("T")
R = TypeVar("R")

_STATE_KEYS = ("commit", "rows", "batch_size", "seed", "buffer", "drop_last", "rank", "world_size")


def distributed() -> tuple[int, int]:
    """(rank, world size): from ``torch.distributed`` when a process group is up, else
    from the ``RANK`` / ``WORLD_SIZE`` variables torchrun sets, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    rank, world = os.environ.get("RANK"), os.environ.get("WORLD_SIZE")
    if rank is not None and world is not None:
        try:
            return int(rank), int(world)
        except ValueError:
            raise ValueError(f"RANK={rank!r} / WORLD_SIZE={world!r} are not integers") from None
    return 0, 1


def _device(device: Any) -> torch.device | None:
    if device is None:
        return None
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"to_torch(device={str(device)!r}): no CUDA GPU is usable here (torch {torch.__version__}, "
            f"CUDA build: {torch.version.cuda or 'none'}); use device=None for CPU tensors")
    if dev.type not in ("cpu", "cuda"):
        try:
            torch.empty(0, device=dev)
        except (RuntimeError, AssertionError) as e:
            raise RuntimeError(f"to_torch(device={str(device)!r}): that device is not usable here: {e}") from None
    return dev


def _tensors(batch: dict[str, Any]) -> dict[str, Any]:
    """numpy -> torch without copies: arrays via ``torch.from_numpy``, lists of arrays
    as lists of tensors, other lists (text, JSON) as they are."""
    out: dict[str, Any] = {}
    for k, v in batch.items():
        if isinstance(v, np.ndarray):
            out[k] = torch.from_numpy(v)
        elif v and any(isinstance(x, np.ndarray) for x in v):
            out[k] = [None if x is None else torch.from_numpy(x) for x in v]
        else:
            out[k] = v
    return out


def _map_tensors(batch: dict[str, Any], fn: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            out[k] = fn(v)
        elif isinstance(v, list) and any(isinstance(x, torch.Tensor) for x in v):
            out[k] = [fn(x) if isinstance(x, torch.Tensor) else x for x in v]
        else:
            out[k] = v
    return out


def batch_nbytes(batch: dict[str, Any]) -> int:
    """Bytes of tensor data in a batch (what the progress bar's MB/s counts)."""
    n = 0
    for v in batch.values():
        if isinstance(v, torch.Tensor):
            n += v.nbytes
        elif isinstance(v, list):
            n += sum(x.nbytes for x in v if isinstance(x, torch.Tensor))
    return n


def pack(batch: dict[str, Any], allocate: Callable[[int], torch.Tensor]) -> tuple[torch.Tensor, list]:
    """Copy a batch's tensors into one uint8 buffer from ``allocate(nbytes)`` (shared or
    pinned memory); returns it and the layout ``unpack`` rebuilds the batch from."""
    total = 0
    places: list[tuple[torch.Tensor, int]] = []

    def place(t: torch.Tensor) -> tuple[int, torch.dtype, tuple[int, ...]]:
        nonlocal total
        offset = -(-total // 64) * 64  # aligned for any dtype (and for SIMD)
        total = offset + t.nbytes
        places.append((t, offset))
        return offset, t.dtype, tuple(t.shape)

    layout: list[tuple[str, str, Any]] = []
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            layout.append((k, "tensor", place(v)))
        elif isinstance(v, list) and any(isinstance(x, torch.Tensor) for x in v):
            layout.append((k, "tensors", [place(x) if isinstance(x, torch.Tensor) else None for x in v]))
        else:
            layout.append((k, "value", v))
    buf = allocate(total)
    for t, offset in places:
        _view(buf, offset, t.dtype, tuple(t.shape)).copy_(t)
    return buf, layout


def unpack(buf: torch.Tensor, layout: list) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, kind, v in layout:
        if kind == "tensor":
            out[k] = _view(buf, *v)
        elif kind == "tensors":
            out[k] = [None if x is None else _view(buf, *x) for x in v]
        else:
            out[k] = v
    return out


def _view(buf: torch.Tensor, offset: int, dtype: torch.dtype, shape: tuple[int, ...]) -> torch.Tensor:
    n = int(np.prod(shape, dtype=np.int64)) * torch.empty((), dtype=dtype).element_size()
    return buf[offset : offset + n].view(dtype).view(shape)


def _shared(nbytes: int) -> torch.Tensor:
    """A uint8 tensor in shared memory, allocated there (as torch's default_collate
    does in workers), so sending it to the main process copies nothing."""
    storage = torch.empty(0, dtype=torch.uint8)._typed_storage()._new_shared(nbytes, device="cpu")
    return torch.empty(0, dtype=torch.uint8).new(storage)


def _pinned(nbytes: int) -> torch.Tensor:
    """Page-locked host memory (from torch's caching host allocator, so not one
    cudaHostAlloc per batch)."""
    return torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)


def readahead(jobs: Iterable[T], fn: Callable[[T], R], depth: int) -> Iterator[R]:
    """``fn`` over ``jobs`` on a background thread, up to ``depth`` results ahead, in
    order: reading (I/O, decoding) overlaps whatever consumes the results. ``depth`` 0:
    in the calling thread."""
    if depth < 1:
        yield from map(fn, jobs)
        return
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reeldb-readahead")
    pending: deque[Future[R]] = deque()
    it = iter(jobs)
    try:
        for job in it:
            pending.append(pool.submit(fn, job))
            if len(pending) >= depth:
                break
        while pending:
            fut = pending.popleft()
            nxt = next(it, _END)
            if nxt is not _END:
                pending.append(pool.submit(fn, nxt))
            yield fut.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


_END: Any = object()


class TorchLoader(IterableDataset):
    """Batches of a reeldb loader as dicts of tensors (see docs/loader.md).

    Iterating continues where the last iteration stopped: a full pass ends the epoch
    and the next ``iter()`` starts the next one; breaking out mid-epoch and iterating
    again resumes it. ``state_dict()`` says where the next iteration starts.
    """

    def __init__(self, plan: Plan, options: Options, device: Any = None, store: Any = None):
        super().__init__()
        self._plan = plan
        self._opt = options
        self._device = _device(device)
        self._pin = options.pin_memory or (self._device is not None and self._device.type == "cuda")
        if self._pin and not torch.cuda.is_available():
            warnings.warn("pin_memory() has no effect: no CUDA GPU is usable here", stacklevel=3)
            self._pin = False
        self._store = store  # the builder's store; workers open the plan's URL instead
        self._reader: Reader | None = None  # this process's, kept across epochs (mappings, open files)
        self._epoch = 0
        self._next = 0  # batches of this epoch already delivered
        self._rank, self._world = distributed()
        self._tagged = False  # on the copy given to our own workers: yield (batch number, batch)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_store"] = state["_reader"] = None
        return state

    def __repr__(self) -> str:
        p = self._plan
        src = repr(p.table) if p.table is not None else "sql"
        return (f"<reeldb TorchLoader {src} at {p.commit[:12]}: {p.rows} rows, {len(self)} batches "
                f"of {self._opt.batch_size} on rank {self._rank}/{self._world}, epoch {self._epoch}>")

    # -- shape of an epoch -------------------------------------------------------------
    @property
    def commit(self) -> str:
        return self._plan.commit

    @property
    def rows(self) -> int:
        """Rows the filters kept, over all ranks."""
        return self._plan.rows

    @property
    def epoch(self) -> int:
        return self._epoch

    def layout(self) -> Layout:
        o = self._opt
        return Layout(self._plan.rows, o.batch_size, self._rank, self._world, o.drop_last)

    def __len__(self) -> int:
        """Batches per epoch on this rank."""
        return self.layout().batches

    def set_epoch(self, epoch: int) -> None:
        """Start the next iteration at the beginning of ``epoch`` (as DistributedSampler's
        ``set_epoch``; needed each epoch when a torch DataLoader you made drives this)."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch must be an int >= 0, not {epoch!r}")
        self._epoch, self._next = epoch, 0

    def state_dict(self) -> dict[str, Any]:
        """Where the next iteration starts: the epoch and the batches of it already
        delivered, plus what decides the batches' contents (checked on load)."""
        o = self._opt
        return {"epoch": self._epoch, "batches": self._next, "commit": self._plan.commit,
                "rows": self._plan.rows, "batch_size": o.batch_size, "seed": o.seed, "buffer": o.buffer,
                "drop_last": o.drop_last, "rank": self._rank, "world_size": self._world}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from ``state_dict()``: the next iteration yields exactly the batches that
        had not been delivered. The loader must order rows the same way (same commit,
        filters, batch size, seed, buffer, drop_last, rank and world size); the number
        of workers may differ."""
        self._rank, self._world = distributed()
        mine = self.state_dict()
        differ = [f"{k}: saved {state.get(k)!r}, here {mine[k]!r}" for k in _STATE_KEYS if state.get(k) != mine[k]]
        if differ:
            raise ValueError("cannot resume: this loader orders rows differently (" + "; ".join(differ) + ")")
        epoch, done = state["epoch"], state["batches"]
        if not 0 <= done <= len(self):
            raise ValueError(f"cannot resume at batch {done}: an epoch has {len(self)}")
        self._epoch, self._next = (epoch + 1, 0) if done == len(self) else (epoch, done)

    # -- iteration ---------------------------------------------------------------------
    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        if info is not None:
            return self._worker(info.id, info.num_workers)
        return self._main()

    def _batches(self, worker: int, workers: int, reader: Reader,
                 pin: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
        """(batch number, batch) for this worker's share of the rank's epoch. When reads
        wait (remote store, decoding) they run ``prefetch`` batches ahead on a background
        thread, which also copies each batch into pinned memory when ``pin``."""
        o = self._opt
        layout = self.layout()
        epoch = self._epoch
        order = epoch_order(self._plan.rows, o.seed, epoch, o.buffer)

        def make(j: int) -> tuple[int, dict[str, Any]]:
            batch = _tensors(reader.read(layout.rows_of(j, order), key=(o.seed or 0, epoch, j)))
            if o.transform is not None:
                batch = o.transform(batch)
            if pin:
                batch = unpack(*pack(batch, _pinned))
            return j, batch

        depth = o.prefetch if reader.waits or pin else 0
        yield from readahead(worker_batches(layout.batches, self._next, worker, workers), make, depth)

    def _worker(self, worker: int, workers: int) -> Iterator[Any]:
        reader = Reader(self._plan, self._store)  # never the parent's: it may be mid-read in a thread
        try:
            for j, batch in self._batches(worker, workers, reader):
                yield (j, *pack(batch, _shared)) if self._tagged else batch
        finally:
            reader.close()

    def _main(self) -> Iterator[dict[str, Any]]:
        self._rank, self._world = distributed()
        o = self._opt
        layout = self.layout()
        if self._next >= layout.batches:  # an epoch with no batches for this rank
            self._epoch, self._next = self._epoch + 1, 0
            return
        if o.workers == 0:
            if self._reader is None:
                self._reader = Reader(self._plan, self._store)
            stream: Iterator[Any] = self._batches(0, 1, self._reader, self._pin)
        else:
            inner = copy.copy(self)
            inner._tagged, inner._reader = True, None
            dl = torch.utils.data.DataLoader(
                inner, batch_size=None, num_workers=o.workers, prefetch_factor=o.prefetch,
                pin_memory=self._pin, multiprocessing_context=o.start_method, persistent_workers=False)
            stream = ((j, unpack(buf, layout)) for j, (buf, layout) in _in_order(dl, self._next))
        bar = _Progress(self, layout) if o.progress else None
        try:
            for j, batch in stream:
                if self._device is not None:
                    batch = _map_tensors(batch, lambda t: t.to(self._device, non_blocking=self._pin))
                self._next = j + 1
                if bar is not None:
                    bar.update(j, batch)
                yield batch
        finally:
            if bar is not None:
                bar.close()
        self._epoch, self._next = self._epoch + 1, 0


def _in_order(items: Iterable[Any], first: int) -> Iterator[tuple[int, Any]]:
    """Workers' (batch number, *payload) items in batch order, whatever order they came in."""
    pending: dict[int, Any] = {}
    expect = first
    for j, *payload in items:
        pending[int(j)] = payload
        while expect in pending:
            yield expect, pending.pop(expect)
            expect += 1
    if pending:
        raise RuntimeError(f"dataloader workers skipped batch {expect}")


class _Progress:
    """tqdm bar of one epoch: rows/s as its rate, MB/s of tensor data beside it."""

    def __init__(self, loader: TorchLoader, layout: Layout):
        from tqdm.auto import tqdm

        p = loader._plan
        done = sum(layout.span(j)[1] - layout.span(j)[0] for j in range(loader._next))
        self._layout = layout
        self._bar = tqdm(total=layout.rows_total(), initial=done, unit="rows",
                         desc=f"{p.table or 'query'} epoch {loader.epoch}", dynamic_ncols=True)
        self._bytes = 0
        self._t0 = time.perf_counter()
        self._shown = self._t0

    def update(self, j: int, batch: dict[str, Any]) -> None:
        start, stop = self._layout.span(j)
        self._bytes += batch_nbytes(batch)
        now = time.perf_counter()
        if now - self._shown > 0.5:
            self._bar.set_postfix_str(f"{self._bytes / 1e6 / (now - self._t0):.1f} MB/s", refresh=False)
            self._shown = now
        self._bar.update(stop - start)

    def close(self) -> None:
        elapsed = time.perf_counter() - self._t0
        if elapsed > 0:
            self._bar.set_postfix_str(f"{self._bytes / 1e6 / elapsed:.1f} MB/s", refresh=False)
        self._bar.close()
