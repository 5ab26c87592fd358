"""``reeldb ui``: a web app to look at a database's rows, clips and images in a browser.

A front end over the public API only (``Connection.at`` snapshots, ``execute``, blobs'
byte-range reads); see docs/ui.md for the pages and the JSON API behind them. Needs the
``ui`` extra (Starlette and uvicorn).
"""

from __future__ import annotations

from .server import DEFAULT_PORT, UIHandle, check_bind, is_loopback, start

__all__ = ["DEFAULT_PORT", "UIHandle", "check_bind", "is_loopback", "start"]
