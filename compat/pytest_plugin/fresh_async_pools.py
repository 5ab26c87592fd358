"""pytest plugin (``-p fresh_async_pools``) for pgvector-python's tests: after each test given
a SQLAlchemy ``AsyncEngine`` as its ``engine`` parameter, the engine's pool is dropped.

Each of those tests runs on its own event loop (pytest-asyncio) and ends with
``await engine.dispose()``; one that fails before that line leaves a pooled asyncpg
connection bound to its closed loop, and the next test on the same engine fails on it
("attached to a different loop", "another operation is in progress") whatever the server
answers. Dropping the pool (without closing its connections: their loop is gone) judges each
test on its own; a failure is still the failing test's. Runs in the suite's own venv.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _fresh_async_pool(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    engine = getattr(request.node, "funcargs", {}).get("engine")
    sync_engine = getattr(engine, "sync_engine", None)  # only an AsyncEngine has one
    if sync_engine is not None:
        sync_engine.dispose(close=False)
