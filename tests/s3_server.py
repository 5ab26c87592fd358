"""moto's standalone S3 server on 127.0.0.1, for the tests and the benchmarks.

Run as a script (``python tests/s3_server.py PORT``) it serves moto's S3 API with one
change: requests that write (PUT, POST, DELETE) are handled one at a time. moto checks
``If-Match`` / ``If-None-Match`` and then writes, in two steps, while S3 does both
atomically; without this, two racing compare-and-swaps could both win in moto, and the
concurrency tests would test moto instead of reeldb. Reads stay concurrent.

``start()`` runs it as a subprocess and returns it with its endpoint, credentials and a
bucket, so the tests' fixture and the benchmarks start the same server.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass

BUCKET = "reeldb-test"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass
class S3Server:
    proc: subprocess.Popen
    endpoint: str
    bucket: str

    def env(self) -> dict[str, str]:
        """What a process needs to reach the server through the standard AWS chain."""
        return {**CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint, "AWS_ALLOW_HTTP": "true"}

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(bucket: str = BUCKET) -> S3Server:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(endpoint + "/", timeout=1).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("moto's S3 server did not start") from None
            time.sleep(0.1)
    server = S3Server(proc, endpoint, bucket)
    req = urllib.request.Request(f"{endpoint}/{bucket}", method="PUT")
    urllib.request.urlopen(req, timeout=10).read()
    return server


def _serve(port: int) -> None:
    os.environ.update(CREDENTIALS)
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import run_simple

    app = DomainDispatcherApplication(create_backend_app)
    writes = threading.Lock()

    def one_write_at_a_time(environ, start_response):  # type: ignore[no-untyped-def]
        if environ["REQUEST_METHOD"] in ("PUT", "POST", "DELETE"):
            with writes:
                return list(app(environ, start_response))  # the body is built inside the lock
        return app(environ, start_response)

    run_simple("127.0.0.1", port, one_write_at_a_time, threaded=True,
               request_handler=MotoRequestHandler)


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
