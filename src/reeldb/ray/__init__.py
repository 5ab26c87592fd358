"""Ray Data over reeldb tables (``pip install 'reeldb[ray]'``): parallel reads of a pinned
commit, parallel writes committed as one commit, and column backfills on a branch.

- ``read``: one read task per group of fragments, filter and columns pushed down;
- ``write``: workers write fragments, the driver commits them all at once;
- ``update_column``: ``fn`` over the rows, the new column in one commit (by ``_rowid``).

docs/ray.md is the user's guide. Importing this package does not import Ray; calling
one of its functions does.
"""

from __future__ import annotations

from .backfill import update_column
from .sink import write
from .source import read

__all__ = ["read", "update_column", "write"]
