"""Shared fixtures: a fresh database on disk per test, the product brief's schema, and
small but real media (a PNG made with Pillow, an MP4 encoded with PyAV)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import reeldb
from reeldb.demo import SCHEMA

# The product brief's table, verbatim (tests/test_brief.py runs the rest of the brief).
BRIEF_CREATE_TABLE = SCHEMA


@pytest.fixture
def path(tmp_path) -> str:
    """Where a test's database folder goes (not created)."""
    return str(tmp_path / "db")


@pytest.fixture
def db(tmp_path) -> Iterator[reeldb.Connection]:
    """An empty database in a real folder."""
    conn = reeldb.connect(tmp_path / "db")
    yield conn
    conn.close()


@pytest.fixture
def brief_schema(db: reeldb.Connection) -> reeldb.Connection:
    """``db`` with the brief's ``generations`` table created exactly as the brief writes it."""
    db.execute(BRIEF_CREATE_TABLE)
    return db


@pytest.fixture
def count(db: reeldb.Connection) -> Callable[[str], int]:
    """``count("t")`` -> the number of rows in ``t`` as ``db`` sees it now."""

    def _count(table: str) -> int:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    return _count


@pytest.fixture
def refused(db: reeldb.Connection, count: Callable[[str], int]) -> Callable[..., reeldb.Error]:
    """``refused(sqlstate, table, sql, params)``: the statement fails with that SQLSTATE and
    ``table`` holds exactly the rows it held before. Returns the error for more checks."""

    def _refused(sqlstate: str, table: str, sql: str, params: Any = None) -> reeldb.Error:
        before = count(table)
        with pytest.raises(reeldb.Error) as info:
            db.execute(sql, params)
        assert info.value.sqlstate == sqlstate, f"{info.value!r}: want {sqlstate}"
        assert count(table) == before, "a refused statement wrote rows"
        return info.value

    return _refused


def _png(width: int, height: int, seed: int) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def png_bytes() -> bytes:
    """A real 40x30 RGB PNG."""
    return _png(40, 30, seed=1)


@pytest.fixture(scope="session")
def png_bytes2() -> bytes:
    """Another real PNG, 16x24."""
    return _png(16, 24, seed=2)


@pytest.fixture(scope="session")
def mp4_bytes() -> bytes:
    """A real MP4: 12 frames at 12 fps, 64x48."""
    from reeldb.media.synth import render_clip

    return render_clip("a golden retriever running on a beach", frames=12, fps=12, size=(64, 48))


@pytest.fixture(scope="session")
def mp4_bytes2() -> bytes:
    """Another real MP4: 8 frames at 8 fps, 32x32."""
    from reeldb.media.synth import render_clip

    return render_clip("a red fox jumping through snow", frames=8, fps=8, size=(32, 32))
