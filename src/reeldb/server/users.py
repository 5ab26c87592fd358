"""Server users and their rights, stored in the database itself as ``_reeldb/users.json``.

One JSON object, moved only by compare-and-swap so two ``reeldb user add`` runs cannot
lose each other's change. Only SCRAM verifiers are stored, never passwords. What each
right allows is decided in one place, ``reeldb.sql.rights``; ``rights_of`` turns a user
into the ``Rights`` its sessions get.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass

from reeldb.format import keys
from reeldb.server import auth
from reeldb.sql.rights import FULL, Rights
from reeldb.storage.base import ObjectStore

USERS_KEY = keys.USERS


@dataclass(frozen=True)
class User:
    """A login and what it may touch; ``branches`` (patterns of branch and tag names)
    None means every ref. ``admin``: may protect, VACUUM, expire and manage users."""

    name: str
    verifier: str
    readonly: bool = False
    branches: tuple[str, ...] | None = None
    admin: bool = False


def _load(store: ObjectStore) -> tuple[dict, str | None]:
    got = store.get_versioned(USERS_KEY)
    if got is None:
        return {}, None
    return json.loads(got[0].decode("utf-8")), got[1]


def _update(store: ObjectStore, change) -> None:
    """Apply ``change(users_dict)`` and CAS it in, retrying when another writer won."""
    for _ in range(100):
        users, version = _load(store)
        change(users)
        data = json.dumps(users, sort_keys=True, indent=1).encode("utf-8")
        if store.compare_and_swap(USERS_KEY, version, data):
            return
    raise RuntimeError("users.json kept changing under us")


def add_user(
    store: ObjectStore, name: str, password: str, *, readonly: bool = False, branches: list[str] | None = None,
    admin: bool = False, by: Rights = FULL,
) -> None:
    """Create or replace a user (replacing is how a password is changed). ``by``: the
    rights of who asks (the command line, with the database's files in hand, has all)."""
    by.authorize("users", None, None)  # users are no ref: no catalog, no branch
    if not name:
        raise ValueError("user name must not be empty")
    if admin and readonly:
        raise ValueError("an admin cannot be read-only: admin rights change the database")
    entry = {"verifier": auth.make_verifier(password), "readonly": readonly, "branches": branches, "admin": admin}

    def change(users: dict) -> None:
        users[name] = entry

    _update(store, change)


def remove_user(store: ObjectStore, name: str, *, by: Rights = FULL) -> None:
    """Delete a user; KeyError if there is none by that name."""
    by.authorize("users", None, None)

    def change(users: dict) -> None:
        if name not in users:
            raise KeyError(name)
        del users[name]

    _update(store, change)


def list_users(store: ObjectStore) -> list[User]:
    """Every user, sorted by name."""
    users, _ = _load(store)
    return [
        User(n, e["verifier"], bool(e.get("readonly")), tuple(e["branches"]) if e.get("branches") else None,
             bool(e.get("admin")))
        for n, e in sorted(users.items())
    ]


def get_user(store: ObjectStore, name: str) -> User | None:
    """The user, or None (the SCRAM exchange then runs against a fake verifier)."""
    return next((u for u in list_users(store) if u.name == name), None)


def check_login(store: ObjectStore, name: str) -> auth.ScramServer:
    """A SCRAM exchange for ``name``; it fails with 28P01 at the end for unknown users."""
    user = get_user(store, name)
    return auth.ScramServer(name, user.verifier if user else None)


def check_password(store: ObjectStore, name: str, password: str) -> User | None:
    """The user when ``password`` is theirs, else None: for logins that receive the password
    itself (``reeldb ui --login users``, HTTP Basic), checked against the stored verifier.
    An unknown name costs the same key stretching as a known one."""
    user = get_user(store, name)
    try:
        iterations, salt, stored_key, _ = auth.parse_verifier(user.verifier) if user else (
            auth.DEFAULT_ITERATIONS, b"\0" * 16, b"", b"")
    except ValueError:
        return None
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    ok = hmac.compare_digest(hashlib.sha256(client_key).digest(), stored_key)
    return user if ok and user is not None else None


def rights_of(user: User | None) -> Rights:
    """The rights a user's sessions get; None is the trusted loopback session of a server
    with no users, which may do everything."""
    if user is None:
        return FULL
    return Rights(user=user.name, read_only=user.readonly, admin=user.admin, patterns=user.branches)


def _store(args) -> ObjectStore:
    from reeldb.storage import open_store

    return open_store(args.path, create=False)


def add_user_command(args) -> int:
    """``reeldb user add NAME [--readonly | --admin] [--branch PATTERN ...] [--password-stdin]``."""
    import getpass
    import sys

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"Password for {args.name}: ")
        if getpass.getpass("Again: ") != password:
            print("passwords differ", file=sys.stderr)
            return 1
    if not password:
        print("empty password refused", file=sys.stderr)
        return 1
    try:
        add_user(_store(args), args.name, password, readonly=args.readonly, branches=args.branch or None,
                 admin=args.admin)
    except ValueError as e:
        print(e, file=sys.stderr)
        return 1
    return 0


def remove_user_command(args) -> int:
    """``reeldb user remove NAME``."""
    import sys

    try:
        remove_user(_store(args), args.name)
    except KeyError:
        print(f"no user {args.name!r}", file=sys.stderr)
        return 1
    return 0


def list_users_command(args) -> int:
    """``reeldb user list``: name, rights, branches; never the verifier."""
    for u in list_users(_store(args)):
        rights = "read-only" if u.readonly else "admin" if u.admin else "read-write"
        print(f"{u.name}\t{rights}\t{','.join(u.branches) if u.branches else '*'}")
    return 0


def register_cli(subparsers) -> None:
    """Add ``user add|remove|list PATH ...`` to the CLI's subparsers; each sets ``func``."""
    p = subparsers.add_parser("user", help="manage the server's users (SCRAM passwords, rights)")
    sub = p.add_subparsers(dest="user_command", required=True)
    a = sub.add_parser("add", help="create a user or change its password")
    a.add_argument("path", metavar="PATH")
    a.add_argument("name", metavar="NAME")
    a.add_argument("--readonly", action="store_true", help="may read, never write")
    a.add_argument("--admin", action="store_true",
                   help="may also protect/unprotect branches, VACUUM, expire history and manage users")
    a.add_argument("--branch", action="append", metavar="PATTERN",
                   help="allowed branch and tag name glob (repeatable)")
    a.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    a.set_defaults(func=add_user_command)
    r = sub.add_parser("remove", help="delete a user")
    r.add_argument("path", metavar="PATH")
    r.add_argument("name", metavar="NAME")
    r.set_defaults(func=remove_user_command)
    ls = sub.add_parser("list", help="list users")
    ls.add_argument("path", metavar="PATH")
    ls.set_defaults(func=list_users_command)
