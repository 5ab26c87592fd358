"""A real PostgreSQL 16 for tests to compare answers with: the binaries of PyPI's
``pgserver`` wheel (a dev dependency), started once per test session on a unix socket in
a private folder, as ``nobody`` when the tests run as root (postgres refuses root).

``start(root)`` returns a running ``PostgresReference``; ``dsn`` is its libpq string."""

from __future__ import annotations

import importlib.util
import os
import pwd
import subprocess
import time
from pathlib import Path
from typing import Any


class PostgresReference:
    def __init__(self, root: Path):
        spec = importlib.util.find_spec("pgserver")
        if spec is None or spec.origin is None:
            raise RuntimeError("pgserver is not installed (it is in reeldb's dev extra: make venv)")
        self.bin = Path(spec.origin).parent / "pginstall" / "bin"
        self.data, self.sock, self.log = root / "pgdata", root / "pgsock", root / "pg.log"
        self.sock.mkdir()
        self.user: dict[str, Any] = {}
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            self.user = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
            os.chmod(root, 0o711)
            os.chown(self.sock, nobody.pw_uid, nobody.pw_gid)
            self.log.touch()
            os.chown(self.log, nobody.pw_uid, nobody.pw_gid)
            self.data.mkdir(mode=0o700)
            os.chown(self.data, nobody.pw_uid, nobody.pw_gid)
        subprocess.run([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                        "--encoding=UTF8", "--locale=C", "--no-sync"], check=True, capture_output=True,
                       **self.user)
        # no TCP listener: only the private socket folder
        self.proc = subprocess.Popen([str(self.bin / "postgres"), "-D", str(self.data), "-k", str(self.sock),
                                      "-c", "listen_addresses=", "-c", "fsync=off"],
                                     stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"),  # noqa: SIM115
                                     **self.user)
        self.dsn = f"host={self.sock} port=5432 dbname=postgres user=postgres"
        self._wait()

    def _wait(self, timeout: float = 60) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.dsn, connect_timeout=5) as c:
                    c.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL did not start: {self.log.read_text()[-2000:]}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
