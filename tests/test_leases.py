"""Writer leases at exit: deleted when the store answers, and never holding the process when
it does not."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import reeldb

SCRIPT = textwrap.dedent("""
    import sys, time
    import reeldb
    from reeldb.storage.local import LocalStore

    hang = sys.argv[2] == "hang"
    if hang:  # a store that stopped answering: every delete waits far past any budget
        original = LocalStore.delete
        def delete(self, key):
            time.sleep(600)
            return original(self, key)
        LocalStore.delete = delete
    db = reeldb.connect(sys.argv[1])
    db.execute("CREATE TABLE t (a INT)")
    db.execute("INSERT INTO t VALUES (1)")
    print("written", flush=True)
""")


def _leases(path: Path) -> list[str]:
    return sorted(p.name for p in (path / "_reeldb" / "writers").glob("*"))


@pytest.mark.slow
def test_a_lease_is_deleted_at_exit(tmp_path: Path) -> None:
    db = tmp_path / "db"
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(db), "ok"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "written" in out.stdout
    assert _leases(db) == []


@pytest.mark.slow
def test_an_unanswering_store_does_not_hold_the_exit(tmp_path: Path) -> None:
    db = tmp_path / "db"
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(db), "hang"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "written" in stdout
    # the lease stays behind (its delete never finished) ...
    assert len(_leases(db)) == 1
    # ... and the process still ended: at most the budget after its work, not the 600 s delete
    assert time.monotonic() - t0 < 60
    # a lease of a process that is gone is ignored: VACUUM and new writers are not held back
    again = reeldb.connect(db)
    assert again.execute("SELECT count(*) FROM t").fetchone() == (1,)


def test_the_last_connection_to_close_deletes_the_lease(tmp_path: Path) -> None:
    path = tmp_path / "db"
    first, second = reeldb.connect(path), reeldb.connect(path)
    first.execute("CREATE TABLE t (a INT)")
    first.execute("INSERT INTO t VALUES (1)")
    assert len(_leases(path)) == 1
    first.close()
    assert len(_leases(path)) == 1  # the other connection still writes under it
    second.execute("INSERT INTO t VALUES (2)")
    second.close()
    assert _leases(path) == []  # released when the last one closed, not at exit
    third = reeldb.connect(path)  # and a new one writes under a new lease
    third.execute("INSERT INTO t VALUES (3)")
    assert len(_leases(path)) == 1
    assert third.execute("SELECT count(*) FROM t").fetchone() == (3,)
    third.close()
    assert _leases(path) == []


def test_a_lease_is_kept_while_a_transaction_is_open(tmp_path: Path) -> None:
    """VACUUM must keep a running transaction's files: closing the other connection does
    not delete the lease that protects them."""
    path = tmp_path / "db"
    setup = reeldb.connect(path)
    setup.execute("CREATE TABLE t (a INT)")
    writer = reeldb.connect(path)
    writer.execute("BEGIN")
    writer.execute("INSERT INTO t VALUES (1)")
    setup.close()
    assert len(_leases(path)) == 1
    writer.execute("COMMIT")
    writer.close()
    assert _leases(path) == []
