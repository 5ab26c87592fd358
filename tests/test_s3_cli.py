"""The command line and `reeldb serve` on an s3:// database: the same URL a Python
connection takes, configured by the standard AWS environment (the ``s3_server`` fixture
sets it), with no server in front of the bucket but reeldb's own."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

import reeldb

psycopg = pytest.importorskip("psycopg")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reeldb", *args], capture_output=True, text=True,
                          timeout=120, env=os.environ.copy())


def test_cli_creates_writes_and_reads_an_s3_database(s3_url: str) -> None:
    out = _cli("sql", s3_url, "-c", "CREATE TABLE t (id INT PRIMARY KEY, name TEXT); "
                                     "INSERT INTO t VALUES (1, 'one'), (2, 'two');")
    assert out.returncode == 0, out.stderr
    out = _cli("sql", s3_url, "-c", "SELECT name FROM t ORDER BY id")
    assert out.returncode == 0, out.stderr
    assert "one" in out.stdout and "two" in out.stdout
    assert _cli("branch", s3_url, "exp").returncode == 0
    out = _cli("log", s3_url)
    assert out.returncode == 0, out.stderr
    assert "t +2" in out.stdout and "create t" in out.stdout, out.stdout
    with reeldb.connect(s3_url, create=False) as db:
        assert sorted(b["name"] for b in db.branches()) == ["exp", "main"]


def test_cli_refuses_a_missing_s3_database(s3_url: str) -> None:
    out = _cli("log", s3_url)
    assert out.returncode != 0
    assert "no reeldb database" in out.stderr


def test_serve_an_s3_database(s3_url: str) -> None:
    with reeldb.connect(s3_url) as db:
        db.execute("CREATE TABLE items (id INT PRIMARY KEY, score FLOAT)")
        db.executemany("INSERT INTO items VALUES (%s, %s)", [(i, i / 10) for i in range(10)])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "reeldb", "serve", s3_url, "--port", str(port)],
                            stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    conninfo = f"host=127.0.0.1 port={port} dbname={s3_url.rsplit('/', 1)[-1]} user=u"  # the prefix's name
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = psycopg.connect(conninfo, autocommit=True)
                break
            except psycopg.OperationalError:
                assert proc.poll() is None, proc.stderr.read()
                assert time.monotonic() < deadline, "reeldb serve did not start"
                time.sleep(0.2)
        with conn:
            assert conn.execute("SELECT count(*), sum(score) FROM items").fetchone() == (10, pytest.approx(4.5))
            conn.execute("INSERT INTO items VALUES (100, 1.0)")
        with reeldb.connect(s3_url, create=False) as db:  # the write landed on S3
            assert db.execute("SELECT count(*) FROM items").fetchone() == (11,)
    finally:
        proc.terminate()
        proc.wait(30)
