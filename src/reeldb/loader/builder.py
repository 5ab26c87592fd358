"""``db.dataloader(...)``: the builder of a training stream.

Every builder method changes the loader and returns it, so calls chain as in the
product brief. The snapshot is pinned when the builder is made; ``to_torch()`` runs the
filters on that snapshot and returns the PyTorch side.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .. import errors
from .options import Options
from .plan import Params, build_query_plan, build_table_plan, parse_decode, table_manifest

if TYPE_CHECKING:
    from ..connection import Connection
    from .torch_loader import TorchLoader


class DataLoader:
    """A dataloader over ``table`` (or the rows of ``sql``) as of the connection's
    current commit. Configure it with the builder methods, then call ``to_torch()``."""

    def __init__(self, conn: Connection, table: str | None = None, *, sql: str | None = None):
        if (table is None) == (sql is None):
            raise errors.ProgrammingError("dataloader() takes a table name or sql=..., exactly one of them")
        self._conn = conn
        self._commit = conn.head
        self._table = table
        self._sql = sql
        self._names: list[str] | None = None
        if table is not None:
            self._names = table_manifest(conn.catalog, self._commit, table).schema.names
        self._filters: list[tuple[str, Params]] = []
        self._columns: list[str] | None = None
        self._decode: dict[str, dict[str, Any]] = {}
        self._opt = Options()

    def __repr__(self) -> str:
        src = repr(self._table) if self._table is not None else "sql=..."
        return f"<reeldb.loader.DataLoader {src} at {self._commit[:12]}>"

    @property
    def commit(self) -> str:
        """The commit every epoch reads, whatever is written after."""
        return self._commit

    # -- which rows and columns --------------------------------------------------------
    def filter(self, expr: str, params: Params = None) -> DataLoader:
        """Keep rows where ``expr`` (a Postgres boolean expression over the table's or
        the query's columns, with optional parameters) is true; calls combine with AND."""
        if not isinstance(expr, str) or not expr.strip():
            raise TypeError("filter() takes a SQL boolean expression as a string")
        self._filters.append((expr, params))
        return self

    def columns(self, names: Sequence[str]) -> DataLoader:
        """The columns each batch holds, in this order; the others are never read."""
        if isinstance(names, str):
            raise TypeError("columns() takes a list of column names, not one string")
        names = list(names)
        if not names:
            raise ValueError("columns() needs at least one column")
        seen = {n for n in names if names.count(n) > 1}
        if seen:
            raise ValueError(f"columns() names {sorted(seen)[0]!r} twice")
        if self._names is not None:
            for n in names:
                if n not in self._names:
                    raise errors.UndefinedColumn(f'column "{n}" of relation "{self._table}" does not exist')
        self._columns = names
        return self

    def decode(self, specs: Mapping[str, Mapping[str, Any]]) -> DataLoader:
        """Decode media columns into uint8 arrays, e.g.
        ``{"output_video": {"frames": 16, "stride": 2, "size": (256, 256)},
        "conditioning_image": {"size": (256, 256)}}``. Without it, media and BYTEA
        columns come as their encoded bytes. See docs/loader.md for every key."""
        if not isinstance(specs, Mapping):
            raise TypeError("decode() takes {column: {option: value}}")
        for name, spec in specs.items():
            if self._names is not None and name not in self._names:
                raise errors.UndefinedColumn(f'column "{name}" of relation "{self._table}" does not exist')
            self._decode[name] = parse_decode(name, spec)
        return self

    # -- how rows become batches -------------------------------------------------------
    def batch_size(self, n: int) -> DataLoader:
        self._opt = replace(self._opt, batch_size=_positive("batch_size", n))
        return self

    def shuffle(self, seed: int = 0, buffer: int | None = None) -> DataLoader:
        """A new order every epoch, the same for every run and rank: keyed by
        ``(seed, epoch)``. ``buffer=n`` shuffles windows of n consecutive rows and the
        rows inside each (more locality, weaker mixing); None: a full permutation."""
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an int >= 0, not {seed!r}")
        self._opt = replace(self._opt, seed=seed, buffer=None if buffer is None else _positive("buffer", buffer))
        return self

    def drop_last(self, drop: bool = True) -> DataLoader:
        """Only full batches, and as many on every rank."""
        self._opt = replace(self._opt, drop_last=bool(drop))
        return self

    def transform(self, fn: Callable[[dict[str, Any]], dict[str, Any]]) -> DataLoader:
        """``fn(batch) -> batch``, run on each batch of tensors in the worker that made
        it. With spawned workers it must be picklable (a module-level function)."""
        if not callable(fn):
            raise TypeError("transform() takes a callable: batch -> batch")
        self._opt = replace(self._opt, transform=fn)
        return self

    def num_workers(self, n: int, start_method: str | None = None) -> DataLoader:
        """Worker processes that read and decode (0: the iterating process, with a
        read-ahead thread). ``start_method``: "fork", "spawn" or "forkserver"
        (None: torch's default)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"num_workers must be an int >= 0, not {n!r}")
        if start_method is not None and start_method not in multiprocessing.get_all_start_methods():
            raise ValueError(f"start method {start_method!r} is not one of {multiprocessing.get_all_start_methods()}")
        self._opt = replace(self._opt, workers=n, start_method=start_method)
        return self

    def prefetch(self, k: int) -> DataLoader:
        """Batches each worker (or the read-ahead thread) prepares ahead."""
        self._opt = replace(self._opt, prefetch=_positive("prefetch", k))
        return self

    def pin_memory(self, pin: bool = True) -> DataLoader:
        """Deliver batches in page-locked host memory, for fast non-blocking copies to
        a GPU (implied by ``to_torch(device="cuda")``)."""
        self._opt = replace(self._opt, pin_memory=bool(pin))
        return self

    def progress(self, show: bool = True) -> DataLoader:
        """A progress bar per epoch with rows/s and MB/s (tqdm, on stderr)."""
        self._opt = replace(self._opt, progress=bool(show))
        return self

    # -- the PyTorch side --------------------------------------------------------------
    def to_torch(self, device: Any = None) -> TorchLoader:
        """Evaluate the filters on the pinned commit and return the PyTorch loader:
        iterate it, or pass it to ``torch.utils.data.DataLoader(..., batch_size=None)``."""
        try:
            from .torch_loader import TorchLoader
        except ImportError as e:
            raise errors.FeatureNotSupported(f"to_torch() needs PyTorch: pip install 'reeldb[torch]' ({e})") from None
        self._conn._check()
        plan = self._plan()
        return TorchLoader(plan, self._opt, device, store=self._conn.catalog.store)

    def _plan(self) -> Any:
        names = self._columns
        if self._table is not None:
            return build_table_plan(self._conn, self._commit, self._table, self._filters, names, self._decode)
        assert self._sql is not None
        return build_query_plan(self._conn, self._commit, self._sql, self._filters, names, self._decode)


def _positive(name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be a positive int, not {v!r}")
    return v


__all__ = ["DataLoader", "Options"]
