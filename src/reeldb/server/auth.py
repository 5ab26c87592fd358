"""SCRAM-SHA-256 server side (RFC 5802 / RFC 7677) as Postgres speaks it, sans-I/O.

The connection code feeds the client's SASLInitialResponse / SASLResponse payloads in and
sends back what this returns; nothing here touches sockets, so it is testable alone.
Verifiers use Postgres' format so only hashes are ever stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from reeldb import errors

MECHANISM = "SCRAM-SHA-256"
DEFAULT_ITERATIONS = 4096


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _hmac(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


def make_verifier(password: str, *, salt: bytes | None = None, iterations: int = DEFAULT_ITERATIONS) -> str:
    """``SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>``, Postgres' pg_authid format."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    stored_key = hashlib.sha256(_hmac(salted, b"Client Key")).digest()
    server_key = _hmac(salted, b"Server Key")
    return f"{MECHANISM}${iterations}:{_b64(salt)}${_b64(stored_key)}:{_b64(server_key)}"


def parse_verifier(verifier: str) -> tuple[int, bytes, bytes, bytes]:
    """``(iterations, salt, stored_key, server_key)``; ValueError when malformed."""
    try:
        mech, iter_salt, keys = verifier.split("$")
        iterations, salt = iter_salt.split(":")
        stored, server = keys.split(":")
        if mech != MECHANISM:
            raise ValueError(mech)
        return int(iterations), base64.b64decode(salt, validate=True), base64.b64decode(stored, validate=True), (
            base64.b64decode(server, validate=True)
        )
    except (ValueError, TypeError) as exc:
        raise ValueError("malformed SCRAM verifier") from exc


def _auth_failed(user: str) -> errors.Error:
    return errors.InvalidPassword(f'password authentication failed for user "{user}"')


def _protocol_error(msg: str) -> errors.Error:
    return errors.ProtocolViolation(msg)


def _attrs(msg: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in msg.split(","):
        if len(part) < 2 or part[1] != "=":
            raise ValueError(part)
        out.setdefault(part[0], part[2:])
    return out


_PROCESS_SECRET = secrets.token_bytes(32)  # when no lasting mock secret is given


def mock_verifier(user: str, secret: bytes) -> tuple[int, bytes, bytes, bytes]:
    """PostgreSQL's mock authentication: for a user that does not exist, the parts of a
    verifier derived from a server secret and the name, with no key stretching. The salt
    is the same at every attempt (as a real user's is) and the server does the same work
    as for a real user (a stored verifier: no PBKDF2 either), so neither the first server
    message nor the time to answer tells a client whether the user exists."""
    digest = hmac.new(secret, b"mock salt\0" + user.encode("utf-8"), hashlib.sha256).digest()
    keys = hmac.new(secret, b"mock keys\0" + user.encode("utf-8"), hashlib.sha512).digest()
    return DEFAULT_ITERATIONS, digest[:16], keys[:32], keys[32:]


class ScramServer:
    """One SCRAM exchange: ``first(client_first) -> server_first``, ``final(client_final) -> server_final``.

    ``verifier`` None (unknown user) still runs the exchange, with ``mock_verifier`` of
    ``mock_secret`` (the server's lasting secret; a per-process one if not given), and
    fails at the end with the message a wrong password gets.
    """

    def __init__(self, user: str, verifier: str | None, mock_secret: bytes | None = None) -> None:
        self.user = user
        self._known = verifier is not None
        if verifier is None:
            parts = mock_verifier(user, mock_secret or _PROCESS_SECRET)
        else:
            parts = parse_verifier(verifier)
        self.iterations, self.salt, self.stored_key, self.server_key = parts
        self._nonce = ""
        self._client_first_bare = ""
        self._server_first = ""
        self._gs2 = ""
        self.done = False

    def first(self, data: bytes) -> bytes:
        """Client-first-message → server-first-message (AuthenticationSASLContinue payload)."""
        try:
            msg = data.decode("utf-8")
            gs2_flag, authzid, bare = msg.split(",", 2)
            if gs2_flag.startswith("p="):
                raise _protocol_error("channel binding is not supported")
            if gs2_flag not in ("n", "y") or authzid:
                raise ValueError(gs2_flag)
            attrs = _attrs(bare)
            client_nonce = attrs["r"]
            if not client_nonce or "m" in attrs:
                raise ValueError("nonce")
        except (ValueError, KeyError, UnicodeDecodeError) as exc:
            raise _protocol_error("malformed SCRAM client-first-message") from exc
        self._gs2 = f"{gs2_flag},{authzid},"
        self._client_first_bare = bare
        self._nonce = client_nonce + _b64(secrets.token_bytes(18))
        self._server_first = f"r={self._nonce},s={_b64(self.salt)},i={self.iterations}"
        return self._server_first.encode("ascii")

    def final(self, data: bytes) -> bytes:
        """Client-final-message → server-final-message (AuthenticationSASLFinal payload); 28P01 on failure."""
        try:
            msg = data.decode("utf-8")
            without_proof, sep, proof_b64 = msg.rpartition(",p=")
            if not sep:
                raise ValueError("no proof")
            attrs = _attrs(without_proof)
            proof = base64.b64decode(proof_b64, validate=True)
            cbind = base64.b64decode(attrs["c"], validate=True).decode("utf-8")
        except (ValueError, KeyError, UnicodeDecodeError) as exc:
            raise _protocol_error("malformed SCRAM client-final-message") from exc
        if not hmac.compare_digest(cbind, self._gs2):
            raise _protocol_error("SCRAM channel binding mismatch")
        if not hmac.compare_digest(attrs.get("r", ""), self._nonce):
            raise _protocol_error("SCRAM nonce mismatch")
        auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode()
        client_sig = _hmac(self.stored_key, auth_message)
        if len(proof) != len(client_sig):
            raise _auth_failed(self.user)
        client_key = bytes(a ^ b for a, b in zip(proof, client_sig))
        ok = hmac.compare_digest(hashlib.sha256(client_key).digest(), self.stored_key)
        if not (ok and self._known):
            raise _auth_failed(self.user)
        self.done = True
        return f"v={_b64(_hmac(self.server_key, auth_message))}".encode("ascii")
