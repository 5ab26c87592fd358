"""The star of a statement that names ``_rowid``: ``*`` must not show the hidden column, so
the rewriter writes a marker in its place and the deparsed SQL is finished here, where both
the rewriter and the catalog (which runs SQL of its own) read it."""

from __future__ import annotations

import re

STAR_MARKER = "__reeldb_star__"
STAR_SQL = re.compile(r'"?' + STAR_MARKER + r'"?')


def finish(sql: str) -> str:
    """Deparsed SQL -> what DuckDB runs: the stars of a statement that names _rowid."""
    return STAR_SQL.sub("* EXCLUDE (_rowid)", sql) if STAR_MARKER in sql else sql
