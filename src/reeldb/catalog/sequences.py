"""Sequence values: a global counter per sequence, moved by compare-and-swap.

A sequence's definition (start, increment, bounds, cycle, cache) is an object of the
branch's commit (objects.py); its *value* is a counter under ``_reeldb/counters/`` shared by
every branch and process, as SERIAL's are (DESIGN.md): two processes committing never draw
the same value, and rows drawn on two branches never collide when merged. Like Postgres,
drawing a value is not transactional (a rolled-back transaction's values are gone) and
``CACHE n`` reserves n values per process at a time (so values are unique but not
increasing across processes).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from dataclasses import dataclass

from .. import errors
from ..format import checksum
from ..format.keys import COUNTERS
from ..storage import ObjectStore

INT8_MIN, INT8_MAX = -(1 << 63), (1 << 63) - 1
TYPE_BOUNDS = {"int2": (-(1 << 15), (1 << 15) - 1), "int4": (-(1 << 31), (1 << 31) - 1), "int8": (INT8_MIN, INT8_MAX)}


@dataclass(frozen=True)
class SequenceDef:
    """One sequence as CREATE SEQUENCE defines it (Postgres' defaults filled in)."""

    id: str  # names its counter: stays when the sequence is renamed
    type: str = "int8"
    start: int = 1
    increment: int = 1
    min: int = 1
    max: int = INT8_MAX
    cycle: bool = False
    cache: int = 1
    owned_by: str | None = None  # "table.column" whose drop drops the sequence
    identity: str | None = None  # "a" (GENERATED ALWAYS) or "d" (BY DEFAULT): an identity column's

    def to_json(self) -> dict:
        d = {"id": self.id, "type": self.type, "start": self.start, "increment": self.increment, "min": self.min,
             "max": self.max, "cycle": self.cycle, "cache": self.cache}
        if self.owned_by is not None:
            d["owned_by"] = self.owned_by
        if self.identity is not None:
            d["identity"] = self.identity
        return d

    @staticmethod
    def from_json(d: dict) -> SequenceDef:
        return SequenceDef(d["id"], d.get("type", "int8"), d["start"], d["increment"], d["min"], d["max"],
                           d.get("cycle", False), d.get("cache", 1), d.get("owned_by"), d.get("identity"))


def new_id() -> str:
    return uuid.uuid4().hex[:16]


class SequenceCounters:
    """Draws values of sequences from their counters, caching ``cache`` values per
    process. The counter holds the last value drawn (``is_called``) or the next one."""

    def __init__(self, store: ObjectStore):
        self.store = store
        self._lock = threading.Lock()
        self._cached: dict[str, list[int]] = {}  # sequence id -> values reserved, not yet handed out
        self._pid = os.getpid()

    def next_values(self, name: str, seq: SequenceDef, n: int) -> list[int]:
        """``n`` values of the sequence (``name`` for errors), in order."""
        with self._lock:
            if self._pid != os.getpid():  # a forked child must not reuse its parent's values
                self._cached, self._pid = {}, os.getpid()
            have = self._cached.setdefault(seq.id, [])
            if len(have) < n:
                have.extend(self._reserve(name, seq, max(n - len(have), seq.cache)))
            out, self._cached[seq.id] = have[:n], have[n:]
            return out

    def set_value(self, seq: SequenceDef, value: int, is_called: bool) -> None:
        """setval / ALTER SEQUENCE RESTART: the counter moves, this process's cache goes."""
        key = COUNTERS + "sequence-" + seq.id
        with self._lock:
            self._cached.pop(seq.id, None)
            for _ in range(10_000):
                got = self.store.get_versioned(key)
                if self.store.compare_and_swap(key, None if got is None else got[1], _body(value, is_called)):
                    return
                time.sleep(0.001)
        raise errors.SerializationFailure("could not set the sequence's value: too much contention")

    def _reserve(self, name: str, seq: SequenceDef, n: int) -> list[int]:
        key = COUNTERS + "sequence-" + seq.id
        delay = 0.001
        for _ in range(10_000):
            got = self.store.get_versioned(key)
            if got is None:
                last, called, version = seq.start, False, None
            else:
                d = checksum.load_json(key, got[0])
                last, called, version = checksum.field(key, d, "last"), bool(d.get("called")), got[1]
            values = _advance(name, seq, last, called, n)
            if self.store.compare_and_swap(key, version, _body(values[-1], True)):
                return values
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        raise errors.SerializationFailure(f'could not draw from sequence "{name}": too much contention')


def _advance(name: str, seq: SequenceDef, last: int, called: bool, n: int) -> list[int]:
    """The ``n`` values after ``last`` (from ``last`` itself when not yet called)."""
    out: list[int] = []
    cur = last
    for i in range(n):
        if i == 0 and not called:
            out.append(cur)
            continue
        nxt = cur + seq.increment
        if nxt > seq.max or nxt < seq.min:
            if not seq.cycle:
                if out:  # hand out what fits; the next call reports the limit
                    break
                word, bound = ("maximum", seq.max) if nxt > seq.max else ("minimum", seq.min)
                raise errors.DataError(f'nextval: reached {word} value of sequence "{name}" ({bound})',
                                       sqlstate="2200H")
            nxt = seq.min if seq.increment > 0 else seq.max
        out.append(nxt)
        cur = nxt
    return out


def _body(last: int, called: bool) -> bytes:
    return json.dumps({"last": last, "called": called, "write": uuid.uuid4().hex[:12]}).encode()
