"""citext values (PostgreSQL 16's contrib ``citext`` 1.6): text compared through lower().

reeldb's database has LC_CTYPE ``C`` (as ``SHOW lc_ctype`` says), where PostgreSQL's
lower() folds only ASCII letters; DuckDB's ``NOCASE`` collation, which compares reeldb's
citext values, folds every Unicode letter. The two agree on every string without a
non-ASCII letter that has a case, so those strings are refused as citext values (0A000)
instead of being compared differently from PostgreSQL.
"""

from __future__ import annotations

from .. import errors


def cased_non_ascii(s: str) -> str | None:
    """The first non-ASCII character of ``s`` that has a case, or None."""
    if s.isascii():
        return None
    for c in s:
        if ord(c) > 127 and (c.lower() != c or c.upper() != c):
            return c
    return None


def check(s: str, where: str = "") -> str:
    """``s`` as a citext value, or 0A000 where PostgreSQL's answer cannot be given."""
    c = cased_non_ascii(s)
    if c is not None:
        raise errors.FeatureNotSupported(
            f"citext value with the non-ASCII letter {c!r} (U+{ord(c):04X}){where} is not supported: reeldb's "
            "database has LC_CTYPE C, where citext folds only ASCII letters, and reeldb compares citext "
            "with Unicode case folding")
    return s


class CitextError(ValueError):
    """citext_in's refusal, carrying its SQLSTATE through DuckDB (engine.translate_error)."""

    def __init__(self, sqlstate: str, message: str):
        super().__init__(f"SQLSTATE {sqlstate}: {message}")


def citext_in(s: str) -> str:
    """``x::citext`` of a value the query computes, run by DuckDB: the same refusal."""
    try:
        return check(s)
    except errors.Error as e:
        raise CitextError(e.sqlstate, e.message) from None
