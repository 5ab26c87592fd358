"""reeldb: one database for generative-video pipelines.

Prompts, embeddings, conditioning images, generated clips, latents, scores and human
preferences in SQL tables; Postgres SQL with vector similarity; git-like branches;
a dataloader into PyTorch; a local folder or object storage, no server needed.
"""

from __future__ import annotations

from .connection import Connection, connect
from .cursor import Cursor
from .dbapi import (
    BINARY,
    DATETIME,
    NUMBER,
    ROWID,
    STRING,
    Binary,
    Date,
    DateFromTicks,
    Time,
    TimeFromTicks,
    Timestamp,
    TimestampFromTicks,
)
from .errors import (
    BranchProtected,
    DatabaseError,
    DataError,
    Error,
    IntegrityError,
    InterfaceError,
    InternalError,
    MergeConflict,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    Warning,
)
from .media.blob import Blob
from .version import __version__ as __version__

# PEP 249 module globals
apilevel = "2.0"
threadsafety = 1  # threads may share the module, not connections
paramstyle = "pyformat"  # %(name)s; %s, :name and $1 work too

__all__ = [
    "BINARY", "DATETIME", "NUMBER", "ROWID", "STRING", "Binary", "Date", "DateFromTicks", "Time",
    "TimeFromTicks", "Timestamp", "TimestampFromTicks",
    "Blob", "BranchProtected", "Connection", "Cursor", "DataError", "DatabaseError", "Error", "IntegrityError",
    "InterfaceError", "InternalError", "MergeConflict", "NotSupportedError", "OperationalError", "ProgrammingError",
    "Warning", "apilevel", "connect", "paramstyle", "threadsafety",
]
