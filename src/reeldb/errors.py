"""PEP 249 exceptions, each carrying the Postgres SQLSTATE a client would see.

Every error reeldb raises is one of these, so code can catch by PEP 249 class
(``reeldb.IntegrityError``) or by SQLSTATE (``err.sqlstate == "23505"``), and the
server can send the same code over the wire.
"""

from __future__ import annotations


class Warning(Exception):  # noqa: A001 - the PEP 249 name
    """Important warnings, as PEP 249 defines them."""


class Error(Exception):
    """Base of every reeldb error; ``sqlstate`` is the Postgres error code."""

    sqlstate: str = "XX000"

    def __init__(self, message: str, *, sqlstate: str | None = None, position: int | None = None):
        super().__init__(message)
        if sqlstate is not None:
            self.sqlstate = sqlstate
        self.position = position

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class InterfaceError(Error):
    sqlstate = "08000"


class DatabaseError(Error):
    sqlstate = "XX000"


class DataError(DatabaseError):
    sqlstate = "22000"


class OperationalError(DatabaseError):
    sqlstate = "58000"


class IntegrityError(DatabaseError):
    sqlstate = "23000"


class InternalError(DatabaseError):
    sqlstate = "XX000"


class ProgrammingError(DatabaseError):
    sqlstate = "42000"


class NotSupportedError(DatabaseError):
    sqlstate = "0A000"


# --- one class per SQLSTATE reeldb raises (psycopg's errors.py is the model) ---------


class InvalidTextRepresentation(DataError):
    sqlstate = "22P02"


class NumericValueOutOfRange(DataError):
    sqlstate = "22003"


class StringDataRightTruncation(DataError):
    sqlstate = "22001"


class InvalidParameterValue(DataError):
    sqlstate = "22023"


class DatatypeMismatch(ProgrammingError):
    sqlstate = "42804"


class InvalidJsonText(DataError):
    sqlstate = "22032"


class DivisionByZero(DataError):
    sqlstate = "22012"


class NotNullViolation(IntegrityError):
    sqlstate = "23502"


class UniqueViolation(IntegrityError):
    sqlstate = "23505"


class SyntaxError(ProgrammingError):  # noqa: A001 - SQLSTATE 42601 is "syntax_error"
    sqlstate = "42601"


class UndefinedTable(ProgrammingError):
    sqlstate = "42P01"


class UndefinedColumn(ProgrammingError):
    sqlstate = "42703"


class UndefinedFunction(ProgrammingError):
    sqlstate = "42883"


class UndefinedObject(ProgrammingError):
    sqlstate = "42704"


class DuplicateTable(ProgrammingError):
    sqlstate = "42P07"


class DuplicateColumn(ProgrammingError):
    sqlstate = "42701"


class DuplicateObject(ProgrammingError):
    sqlstate = "42710"


class InvalidSchemaName(ProgrammingError):
    sqlstate = "3F000"


class WrongObjectType(ProgrammingError):
    sqlstate = "42809"


class UndefinedParameter(ProgrammingError):
    sqlstate = "42P02"


class ReadOnlySqlTransaction(OperationalError):
    sqlstate = "25006"


class ObjectInUse(OperationalError):
    sqlstate = "55006"


class ActiveSqlTransaction(OperationalError):
    sqlstate = "25001"


class NoActiveSqlTransaction(OperationalError):
    sqlstate = "25P01"


class InFailedSqlTransaction(OperationalError):
    sqlstate = "25P02"


class InvalidSavepointSpecification(OperationalError):
    sqlstate = "3B001"


class InvalidCursorName(OperationalError):
    sqlstate = "34000"


class DuplicateCursor(ProgrammingError):
    sqlstate = "42P03"


class ObjectNotInPrerequisiteState(OperationalError):
    sqlstate = "55000"


class SerializationFailure(OperationalError):
    """A concurrent commit changed what this transaction changed; retry it."""

    sqlstate = "40001"


class StorageError(OperationalError):
    sqlstate = "58030"  # io_error


class CharacterNotInRepertoire(DataError):
    sqlstate = "22021"


class InvalidBinaryRepresentation(DataError):
    sqlstate = "22P03"


class ProtocolViolation(OperationalError):
    sqlstate = "08P01"


class TooManyConnections(OperationalError):
    sqlstate = "53300"


class ProgramLimitExceeded(OperationalError):
    sqlstate = "54000"


class StatementTooComplex(ProgramLimitExceeded):
    """A statement too long or nested too deeply to parse safely."""

    sqlstate = "54001"


class OutOfMemory(OperationalError):
    """A statement went past its memory bound (``--statement-memory``)."""

    sqlstate = "53200"


class InvalidCatalogName(ProgrammingError):
    """A database name this server does not serve."""

    sqlstate = "3D000"


class DataCorrupted(InternalError):
    """A stored object does not match the checksum its manifest recorded, or cannot be
    read as what it claims to be. The message names the object."""

    sqlstate = "XX001"


class QueryCanceled(OperationalError):
    sqlstate = "57014"


class InvalidAuthorizationSpecification(OperationalError):
    sqlstate = "28000"


class InvalidPassword(InvalidAuthorizationSpecification):
    sqlstate = "28P01"


class InsufficientPrivilege(ProgrammingError):
    sqlstate = "42501"


class FeatureNotSupported(NotSupportedError):
    sqlstate = "0A000"


class BranchProtected(ReadOnlySqlTransaction):
    """A write (commit, merge, reset) to a protected branch."""


class MergeConflict(IntegrityError):
    """A merge whose two sides changed the same cells, or one updated what the other
    deleted, or both added the same unique key. Nothing was written.

    ``conflicts`` lists every one (``reeldb.catalog.merge.Conflict``: table, the row's key
    columns (its primary key, else its first unique key), rowid, column, base, ours, theirs,
    kind). The SQLSTATE is reeldb's own (class ``RD``, which the SQL
    standard leaves to implementations), so clients can tell it from a plain 23xxx."""

    sqlstate = "RD001"

    def __init__(self, message: str, conflicts: list | None = None):
        super().__init__(message)
        self.conflicts = list(conflicts or [])

    def to_arrow(self):  # noqa: ANN201 - pyarrow is imported lazily by callers already
        import json

        import pyarrow as pa

        def cell(x, c: str):  # noqa: ANN001, ANN202
            v = getattr(x, c)
            if v is None or c == "rowid":
                return v
            return json.dumps(v, default=str) if c == "key" else str(v)

        cols = ["table", "key", "rowid", "column", "kind", "base", "ours", "theirs"]
        return pa.table({c: [cell(x, c) for x in self.conflicts] for c in cols})


class CheckViolation(IntegrityError):
    """A written row makes a CHECK constraint false (SQLSTATE 23514)."""

    sqlstate = "23514"


class AmbiguousColumn(ProgrammingError):
    """A column name two FROM items have, unqualified (SQLSTATE 42702)."""

    sqlstate = "42702"


class InvalidEscapeSequence(DataError):
    """A LIKE pattern that ends with its escape character (SQLSTATE 22025)."""

    sqlstate = "22025"


class UntranslatableCharacter(DataError):
    """A character the type cannot hold: ``\\u0000`` in jsonb (SQLSTATE 22P05)."""

    sqlstate = "22P05"


class StatementTimeout(QueryCanceled):
    """57014 because statement_timeout ran out, not because the client cancelled: work
    split up by reeldb (a pipeline's rows written at once) may be redone in smaller steps."""


class InvalidGrantOperation(ProgrammingError):
    """A privilege the object has not: GRANT INSERT ON LARGE OBJECT (SQLSTATE 0LP01)."""

    sqlstate = "0LP01"


class ArraySubscriptError(DataError):
    """A byte or bit position outside the value: set_byte('x', 1, 0) (SQLSTATE 2202E)."""

    sqlstate = "2202E"
