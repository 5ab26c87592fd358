"""Who may use the app: the token, a user's password (HTTP Basic), or, with neither, a
loopback Host (so a page on another site cannot reach the app by DNS rebinding); and the
security headers every response carries."""

from __future__ import annotations

import base64
import ipaddress
import secrets
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .logins import CURRENT_USER, VerifiedCache

TOKEN_COOKIE = "reeldb_ui_token"
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; media-src 'self'; script-src 'self'; "
     b"style-src 'self'; frame-ancestors 'none'"),
]


class Guard:
    """ASGI middleware: the token, or a user's password (HTTP Basic), or without either a
    loopback Host, for every route; and the security headers on every response."""

    def __init__(self, app: ASGIApp, token: str | None, users: VerifiedCache | None = None):
        self.app = app
        self.token = token
        self.users = users

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if self.users is not None:
            user = await run_in_threadpool(self._user, request)  # key stretching: off the event loop
            if user is None:
                await JSONResponse({"error": "log in as one of the database's users"}, status_code=401,
                                   headers={"www-authenticate": 'Basic realm="reeldb ui", charset="UTF-8"'})(
                    scope, receive, send)
                return
            CURRENT_USER.set(user)  # this request's task and the threads it runs code on
        refusal = self._refusal(request)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        if self.token is not None and request.query_params.get("token") and scope["path"] == "/":
            # the link printed at start: keep the token in a cookie, take it out of the URL
            response = RedirectResponse("/", status_code=303)
            response.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="strict")
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _user(self, request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("basic ") or self.users is None:
            return None
        try:
            name, sep, password = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return name if sep and name and self.users.check(name, password) else None

    def _refusal(self, request: Request) -> Response | None:
        if self.users is not None:
            return None  # the user's rights decide, per ref
        if self.token is None:
            if not is_loopback(_host_name(request.headers.get("host", ""))):
                return JSONResponse({"error": "this reeldb ui answers only to localhost"}, status_code=403)
            return None
        offered = [request.cookies.get(TOKEN_COOKIE), request.query_params.get("token")]
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            offered.append(auth[7:].strip())
        if any(t and secrets.compare_digest(t.encode(), self.token.encode()) for t in offered):
            return None
        return JSONResponse({"error": "login required: open the link with the token printed at start, or "
                                      "send Authorization: Bearer TOKEN"},
                            status_code=401, headers={"www-authenticate": 'Bearer realm="reeldb ui"'})


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def _host_name(host: str) -> str:
    """The name part of a Host header: ``[::1]:8700`` -> ``[::1]``, ``localhost:8700`` -> ``localhost``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host
