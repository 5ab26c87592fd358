"""TLS for ``reeldb serve``: a server SSLContext, and a self-signed cert maker for tests."""

from __future__ import annotations

import os
import ssl
import subprocess
from pathlib import Path


def server_context(cert_path: str | os.PathLike[str], key_path: str | os.PathLike[str]) -> ssl.SSLContext:
    """An SSLContext for the SSLRequest upgrade, TLS 1.2 or newer; ValueError names the bad file."""
    for what, p in (("certificate", cert_path), ("key", key_path)):
        if not Path(p).is_file():
            raise ValueError(f"TLS {what} file not found: {p}")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(os.fspath(cert_path), os.fspath(key_path))
    except ssl.SSLError as exc:
        raise ValueError(f"cannot load TLS certificate {cert_path} with key {key_path}: {exc}") from exc
    return ctx


def make_self_signed(directory: str | os.PathLike[str], common_name: str = "localhost") -> tuple[Path, Path]:
    """``(cert, key)`` paths of a fresh self-signed pair, for tests (openssl CLI)."""
    d = Path(directory)
    cert, key = d / "server.crt", d / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", f"/CN={common_name}", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key
