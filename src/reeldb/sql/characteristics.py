"""Transaction characteristics: isolation level, READ ONLY, DEFERRABLE.

Every reeldb transaction reads one snapshot and commits by compare-and-swap with a rebase
(snapshot isolation, what Postgres calls REPEATABLE READ). A client asking for READ
COMMITTED or READ UNCOMMITTED gets that or better, as the SQL standard allows, and sees
the level it asked for reported back. SERIALIZABLE is refused: snapshot isolation lets
write skew through, so claiming it would be a lie. READ ONLY is enforced.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pglast import ast

from .. import errors

LEVELS = ("read uncommitted", "read committed", "repeatable read")


@dataclass(frozen=True)
class Characteristics:
    isolation: str = "repeatable read"
    read_only: bool = False
    deferrable: bool = False


def with_options(base: Characteristics, options: tuple[ast.DefElem, ...] | None) -> Characteristics:
    """BEGIN ISOLATION LEVEL ... READ ONLY ..., SET [SESSION CHARACTERISTICS AS] TRANSACTION ..."""
    out = base
    for opt in options or ():
        value = opt.arg.val
        if opt.defname == "transaction_isolation":
            out = replace(out, isolation=isolation(value.sval))
        elif opt.defname == "transaction_read_only":
            out = replace(out, read_only=bool(value.ival))
        elif opt.defname == "transaction_deferrable":
            out = replace(out, deferrable=bool(value.ival))
    return out


def isolation(level: str) -> str:
    low = " ".join(level.lower().replace("_", " ").split())
    if low == "serializable":
        raise errors.FeatureNotSupported(
            "SERIALIZABLE is not supported: reeldb transactions are snapshot isolation (REPEATABLE READ)")
    if low == "default":
        return "repeatable read"
    if low not in LEVELS:
        raise errors.InvalidParameterValue(f'invalid value for parameter "transaction_isolation": "{level}"')
    return low


def boolean(name: str, value: Any) -> bool:
    low = str(value).strip().lower()
    if low in ("on", "true", "yes", "1", "t"):
        return True
    if low in ("off", "false", "no", "0", "f"):
        return False
    raise errors.InvalidParameterValue(f'parameter "{name}" requires a Boolean value')


def as_settings(current: Characteristics, default: Characteristics) -> dict[str, str]:
    on = {True: "on", False: "off"}
    return {"transaction_isolation": current.isolation, "transaction_read_only": on[current.read_only],
            "transaction_deferrable": on[current.deferrable], "default_transaction_isolation": default.isolation,
            "default_transaction_read_only": on[default.read_only],
            "default_transaction_deferrable": on[default.deferrable]}
