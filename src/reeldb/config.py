"""One configuration object: every switch reeldb reads, its environment variable and its default.

The environment is read here and nowhere else. ``reeldb.connect(..., auto_compact=False)``
builds a :class:`Config` whose values come, in order of precedence, from the argument, from the
environment variable, then from the default. A value that does not parse is refused with 22023
naming the variable, never taken as its default. ``docs/configuration.md`` documents each
setting in one table, which a test checks against :data:`SETTINGS`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import errors

DEFAULT_CACHE_BYTES = 10 << 30
_TRUE = ("1", "true", "on", "yes")
_FALSE = ("0", "false", "off", "no")
_SIZE_UNITS = {"": 1, "B": 1, "KB": 1 << 10, "KIB": 1 << 10, "MB": 1 << 20, "MIB": 1 << 20,
               "GB": 1 << 30, "GIB": 1 << 30, "TB": 1 << 40, "TIB": 1 << 40}


def parse_bool(value: Any, name: str) -> bool:
    """``1/0``, ``true/false``, ``on/off``, ``yes/no`` (any case), or a Python bool."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise errors.InvalidParameterValue(f"{name} must be a boolean (on/off, true/false, 1/0), not {value!r}")


def parse_size(value: Any, name: str) -> int:
    """Bytes: an integer, or a number with a unit (``512MB``, ``10 GiB``); 0 turns a cache off."""
    if isinstance(value, bool):
        raise errors.InvalidParameterValue(f"{name} must be a size in bytes, not {value!r}")
    if isinstance(value, int):
        size = value
    else:
        text = str(value).strip().upper()
        digits = text.rstrip("KMGTIB ")
        unit = text[len(digits):].strip()
        try:
            size = int(float(digits) * _SIZE_UNITS[unit])
        except (KeyError, ValueError):
            raise errors.InvalidParameterValue(
                f"{name} must be a size in bytes (4294967296, 512MB, 10GB), not {value!r}") from None
    if size < 0:
        raise errors.InvalidParameterValue(f"{name} must not be negative, not {value!r}")
    return size


def parse_text(value: Any, name: str) -> str:
    text = str(value).strip()
    if not text:
        raise errors.InvalidParameterValue(f"{name} must not be empty")
    return text


def _default_author() -> str:
    return os.environ.get("USER") or "reeldb"


def _default_cache_dir() -> str:
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "reeldb")


def _default_history() -> str:
    return os.path.expanduser("~/.reeldb_history")


@dataclass(frozen=True)
class Setting:
    """One switch: the ``connect()`` keyword, its environment variable, how it parses."""

    name: str
    env: str
    parse: Callable[[Any, str], Any]
    default: Callable[[], Any]
    doc: str


SETTINGS: tuple[Setting, ...] = (
    Setting("auto_compact", "REELDB_AUTO_COMPACT", parse_bool, lambda: True,
            "Rewrite a table's small fragments into larger ones after a commit fills a tier."),
    Setting("group_commit", "REELDB_GROUP_COMMIT", parse_bool, lambda: True,
            "Let concurrent appends to one branch combine into one commit when the head is contended."),
    Setting("author", "REELDB_AUTHOR", parse_text, _default_author,
            "The author recorded in commits (default: the login name, $USER)."),
    Setting("cache_size", "REELDB_CACHE_SIZE", parse_size, lambda: DEFAULT_CACHE_BYTES,
            "Bytes of the local disk cache of object-storage databases; 0 turns it off."),
    Setting("cache_dir", "REELDB_CACHE_DIR", parse_text, _default_cache_dir,
            "Folder of that disk cache (default: $XDG_CACHE_HOME/reeldb or ~/.cache/reeldb)."),
    Setting("history_file", "REELDB_HISTORY", parse_text, _default_history,
            "The `reeldb sql` shell's history file."),
)
BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class Config:
    """The resolved settings of one connection (``Connection.config``)."""

    auto_compact: bool
    group_commit: bool
    author: str
    cache_size: int
    cache_dir: str
    history_file: str

    @classmethod
    def resolve(cls, environ: Mapping[str, str] | None = None, **given: Any) -> Config:
        """Arguments (those not None) over the environment over the defaults."""
        unknown = set(given) - BY_NAME.keys()
        if unknown:
            raise errors.InvalidParameterValue(
                f"unknown setting {', '.join(sorted(unknown))}: known are {', '.join(BY_NAME)}")
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for s in SETTINGS:
            if given.get(s.name) is not None:
                values[s.name] = s.parse(given[s.name], s.name)
            elif env.get(s.env) is not None:
                values[s.name] = s.parse(env[s.env], s.env)
            else:
                values[s.name] = s.default()
        return cls(**values)


def from_environment() -> Config:
    """The configuration with no arguments: what code that opens a store on its own uses."""
    return Config.resolve()
