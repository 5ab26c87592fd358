"""Shared fixtures: a fresh database on disk per test, the product brief's schema, and
small but real media (a PNG made with Pillow, an MP4 encoded with PyAV)."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import reeldb
import s3_server as s3_server_mod
from pg_reference import PostgresReference
from reeldb.demo import SCHEMA

# The product brief's table, verbatim (tests/test_brief.py runs the rest of the brief).
BRIEF_CREATE_TABLE = SCHEMA


# Modules whose ``path`` / ``db`` tests run twice: on a local folder and on S3 (moto's
# standalone server on 127.0.0.1). The rest of the suite runs on local folders only.
S3_MODULES = {"test_sql", "test_versioning", "test_history", "test_diff", "test_loader",
              "test_brief", "test_concurrency", "test_group_commit"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rpartition(".")[2]
    if module in S3_MODULES and {"path", "db"} & set(metafunc.fixturenames):
        if "backend" not in metafunc.fixturenames:
            metafunc.fixturenames.append("backend")
        local_only = metafunc.definition.get_closest_marker("local_only") is not None
        metafunc.parametrize("backend", ["local"] if local_only else ["local", "s3"], indirect=True)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "local_only: inspects a local folder's files; not run on S3")
    config.addinivalue_line("markers", "s3: runs against moto's S3 server (set by conftest)")
    config.addinivalue_line("markers", "server: starts `reeldb serve` (set by conftest)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds; left out of `make test-fast`")


def _starts_server(path: str, seen: dict[str, bool] = {}) -> bool:  # noqa: B006 - a cache
    """A test module that runs `reeldb serve` names the server package or its command."""
    if path not in seen:
        text = Path(path).read_text(encoding="utf-8")
        seen[path] = "reeldb.server" in text or '"serve"' in text
    return seen[path]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tiers of `make test-fast`: S3 and server tests are marked here, from what they use."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if params.get("backend") == "s3" or "s3_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.s3)
        if item.module is not None and _starts_server(str(item.path)):
            item.add_marker(pytest.mark.server)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return getattr(request, "param", "local")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[s3_server_mod.S3Server]:
    """moto's S3 server for the whole session; the standard AWS variables point every
    process of the test run (DataLoader workers included) at it."""
    server = s3_server_mod.start()
    saved = {k: os.environ.get(k) for k in [*server.env(), "REELDB_CACHE_DIR"]}
    os.environ.update(server.env())
    os.environ["REELDB_CACHE_DIR"] = str(tmp_path_factory.mktemp("reeldb-cache"))
    yield server
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def s3_url(s3_server: s3_server_mod.S3Server) -> str:
    """A fresh, empty database location on the S3 server."""
    return f"s3://{s3_server.bucket}/{uuid.uuid4().hex}"


@pytest.fixture
def path(tmp_path, backend: str, request: pytest.FixtureRequest) -> str:
    """Where a test's database goes (not created): a folder, or an S3 prefix."""
    if backend == "s3":
        return request.getfixturevalue("s3_url")
    return str(tmp_path / "db")


@pytest.fixture
def db(path: str) -> Iterator[reeldb.Connection]:
    """An empty database in a real folder (or on S3)."""
    conn = reeldb.connect(path)
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


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """A real PostgreSQL 16 (pgserver's binaries) for the session: its libpq connection
    string. What reeldb answers is checked against what it answers."""
    # not under pytest's temporary folder: its parents are private to root, and the server
    # runs as nobody when the tests run as root
    root = Path(tempfile.mkdtemp(prefix="reeldb-postgres-"))
    pg = PostgresReference(root)
    yield pg.dsn
    pg.stop()
    shutil.rmtree(root, ignore_errors=True)
