"""A database of a test module's own, served by a real `reeldb serve` for the module's tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

import reeldb
from reeldb.server.server import BackgroundServer


@contextlib.contextmanager
def served(tmp_path_factory: pytest.TempPathFactory, name: str, *statements: str,
           branches: tuple[str, ...] = (), max_connections: int = 16) -> Iterator[BackgroundServer]:
    """A fresh database ``name`` (served as database ``name``), made by ``statements``, with
    ``branches`` beside main, served on a free loopback port until the block ends."""
    path = tmp_path_factory.mktemp("served") / name
    db = reeldb.connect(path)
    for sql in statements:
        db.execute(sql)
    for branch in branches:
        db.branch(branch, checkout=False)
    db.close()
    server = BackgroundServer(str(path), port=0, max_connections=max_connections)
    try:
        yield server
    finally:
        server.stop()
