"""A branch's catalog objects other than tables: schemas, enum types, domains, sequences,
comments and views.

They are small JSON definitions kept in the commit itself (``Commit.objects``, key ->
definition), so they are versioned with the branch exactly like tables: a branch made
after ``CREATE TYPE`` has the type, a merge brings the other side's, a transaction that
fails leaves none. Commits written before objects existed have none, which reads as
"no schemas, types, sequences or comments". Sequence *values* are not here: like SERIAL
they come from global counters (``_reeldb/counters/``), so ids drawn on two branches
never collide when merged.

Keys: ``schema/<name>``, ``type/<name>``, ``sequence/<name>``,
``comment/table/<table>``, ``comment/column/<table>/<column id>``, ``view/<name>`` (a view's
SELECT, columns and the relations it reads; a materialized view's rows are a table of the
same name: sql/views.py).
"""

from __future__ import annotations

from typing import Any

SCHEMA, TYPE, SEQUENCE, COMMENT, VIEW = "schema/", "type/", "sequence/", "comment/", "view/"

Objects = dict[str, Any]


def key(kind: str, *parts: str | int) -> str:
    return kind + "/".join(str(p) for p in parts)


def named(objects: Objects, kind: str) -> dict[str, Any]:
    """name -> definition of every object of one kind."""
    return {k[len(kind):]: v for k, v in objects.items() if k.startswith(kind)}


def apply(objects: Objects, changes: Objects) -> Objects:
    """``objects`` with ``changes`` made (a None value deletes)."""
    out = dict(objects)
    for k, v in changes.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def conflicts(base: Objects, head: Objects, changes: Objects) -> list[str]:
    """Keys our ``changes`` (made on ``base``) collide on with what reached ``head``
    meanwhile: both changed the same object differently."""
    return [k for k, v in changes.items() if head.get(k) != base.get(k) and head.get(k) != v]


def merge3(base: Objects, ours: Objects, theirs: Objects) -> tuple[Objects, list[str]]:
    """Three-way merge by key: a side that kept the base's definition takes the other's;
    two different changes to one key conflict (ours is kept in the result)."""
    out: Objects = {}
    clashes = []
    for k in sorted(set(base) | set(ours) | set(theirs)):
        b, o, t = base.get(k), ours.get(k), theirs.get(k)
        v = o
        if o == b:
            v = t
        elif t != b and t != o:
            clashes.append(k)
        if v is not None:
            out[k] = v
    return out, clashes


def describe(k: str) -> str:
    """An object key as users name the object (in a conflict's message)."""
    kind, _, rest = k.partition("/")
    return f'{kind} "{rest}"'
