"""The ``reeldb`` command: a SQL shell and a few tools for a database folder.

    reeldb sql PATH [-c SQL] [--branch B]          run SQL, or an interactive shell
    reeldb tables PATH [--branch B]                table names
    reeldb log PATH [--branch B] [--graph] [-n N]  commits, newest first
    reeldb branch PATH [NAME] [--from REF]         list or create branches (-d NAME deletes)
    reeldb tag PATH [NAME] [--at REF]              list or create tags (-d NAME deletes)
    reeldb diff PATH A [B] [--table T]             rows and cells that changed from A to B
    reeldb merge PATH SOURCE [--into B] [--strategy fail|ours|theirs]
    reeldb optimize PATH [TABLE] [--branch B]      compact small and mostly-deleted fragments
    reeldb vacuum PATH [--retain 7d] [--grace 1h]  delete files no branch or tag reaches
    reeldb expire PATH --older-than 30d            drop old commits from history
    reeldb check PATH [--all-history]              verify every object's checksum (like git fsck)
    reeldb ui PATH [--host H] [--port P] [--branch B] [--login [token|users]] [--label-branch B]  web app

Results print as aligned tables; blob and array cells are abbreviated
(``<video 1.2 MB>``, ``[0.12, -0.3, … 4096 dims]``). A reeldb error prints
``ERROR: ...`` on stderr and exits with status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import decimal
import json
import math
import os
import sys
import time
import unicodedata
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

import reeldb
from reeldb import errors
from reeldb.config import from_environment

HISTORY_LENGTH = 1000
SHORT_ID = 16  # ids are 12 hex digits of milliseconds + 12 random: a shorter prefix is not unique

SHELL_HELP = """\
statements end with ';' and may span lines
  \\dt           list tables
  \\c BRANCH     switch to another branch
  \\timing       toggle printing each statement's time
  \\?            this help
  \\q            quit (or Ctrl-D)"""


# --- formatting (no database needed) ------------------------------------------------------


def format_size(n: int) -> str:
    """Bytes, human-readable in powers of 1000: ``812 B``, ``4.1 KB``, ``1.2 MB``."""
    if n < 1000:
        return f"{n} B"
    x = float(n)
    for unit in ("KB", "MB", "GB", "TB", "PB"):
        x /= 1000.0
        if x < 999.95 or unit == "PB":
            return f"{x:.1f} {unit}" if x < 99.95 else f"{x:.0f} {unit}"
    raise AssertionError("unreachable")


def _format_float(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    # REAL values come back as doubles with float32 noise (0.85 -> 0.8500000238418579):
    # when the value is exactly a float32, the shortest float32 text is the honest one.
    f32 = np.float32(v)
    if float(f32) == v:
        short = str(f32)
        if len(short) < len(repr(v)):
            return short
    return repr(v)


def _format_element(x: Any) -> str:
    if isinstance(x, bool | np.bool_):
        return "true" if x else "false"
    if isinstance(x, int | np.integer):
        return str(int(x))
    if isinstance(x, float | np.floating):
        if math.isnan(x) or math.isinf(x):
            return _format_float(float(x))
        return f"{float(x):.3g}"
    return str(x)


def _format_array(a: np.ndarray) -> str:
    if a.dtype == object:
        a = np.asarray(a.tolist())
    flat = a.reshape(-1)
    if a.ndim <= 1 and flat.size <= 4:
        return "[" + ", ".join(_format_element(x) for x in flat) + "]"
    head = ", ".join(_format_element(x) for x in flat[:2])
    if a.ndim == 1:
        return f"[{head}, … {a.shape[0]} dims]"
    shape = "x".join(str(d) for d in a.shape)
    return f"[{head}, … {shape} {a.dtype}]"


def _escape(s: str) -> str:
    """One line per cell: control characters shown as escapes."""
    if s.isprintable():
        return s
    out = []
    for ch in s:
        if ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif unicodedata.category(ch) in ("Cc", "Cf") and ch not in ("\u200d",):
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def format_value(v: Any) -> str:
    """One cell as text: NULL, numbers, text, JSON, timestamps; blobs and arrays abbreviated."""
    if v is None:
        return "NULL"
    if isinstance(v, reeldb.Blob):
        return f"<{v.kind} {format_size(len(v))}>"
    if isinstance(v, bytes | bytearray | memoryview):
        return f"<bytea {format_size(len(v))}>"
    if isinstance(v, np.ndarray):
        return _format_array(v)
    if isinstance(v, bool | np.bool_):
        return "true" if v else "false"
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        return _format_float(float(v))
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, str):
        return _escape(v)
    if isinstance(v, dict | list | tuple):
        return _escape(json.dumps(v, ensure_ascii=False, default=_json_default))
    if isinstance(v, dt.datetime | dt.date | dt.time | dt.timedelta | uuid.UUID):
        return str(v)
    return _escape(str(v))


def _json_default(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    return str(o)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float | decimal.Decimal | np.integer | np.floating) and not isinstance(
        v, bool | np.bool_
    )


def _width(s: str) -> int:
    """Columns a string takes in a terminal (wide East Asian characters count twice)."""
    if s.isascii():
        return len(s)
    w = 0
    for ch in s:
        if unicodedata.combining(ch):
            continue
        w += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return w


def _pad(s: str, width: int, align: str) -> str:
    gap = width - _width(s)
    if gap <= 0:
        return s
    if align == "right":
        return " " * gap + s
    if align == "center":
        left = gap // 2
        return " " * left + s + " " * (gap - left)
    return s + " " * gap


def format_table(columns: list[str], rows: list[tuple]) -> str:
    """An aligned table as psql prints one: header, separator, rows, ``(N rows)``.

    Numbers are right-aligned, everything else left-aligned; cells go through
    :func:`format_value`. Lines carry no trailing spaces.
    """
    n = len(rows)
    footer = f"({n} row)" if n == 1 else f"({n} rows)"
    if not columns:
        return footer
    cells = [[format_value(v) for v in row] for row in rows]
    ncol = len(columns)
    for row in cells:  # tolerate short or long rows rather than hide data
        if len(row) < ncol:
            row.extend([""] * (ncol - len(row)))
    extra = max((len(r) for r in cells), default=ncol) - ncol
    headers = [_escape(str(c)) for c in columns] + [""] * extra
    widths = [_width(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], _width(c))
    right = [
        any(_is_number(row[i]) for row in rows if i < len(row))
        and all(row[i] is None or _is_number(row[i]) for row in rows if i < len(row))
        for i in range(len(headers))
    ]

    def line(parts: Sequence[str]) -> str:
        return (" " + " | ".join(parts)).rstrip()

    out = [line([_pad(h, w, "center") for h, w in zip(headers, widths)])]
    out.append("-" + "-+-".join("-" * w for w in widths) + "-")
    for row in cells:
        out.append(line([_pad(c, w, "right" if r else "left")
                         for c, w, r in zip(row, widths, right)]))
    out.append(footer)
    return "\n".join(out)


def short_id(commit: str) -> str:
    return commit[:SHORT_ID]


# --- SQL text -------------------------------------------------------------------------------


def split_sql(text: str) -> tuple[list[str], str]:
    """Split SQL into complete statements (each ended by ``;``) and the unfinished rest.

    Semicolons inside strings, quoted names and comments do not count. Raises
    ``ValueError`` while a string or comment is still open (more input is needed).
    """
    from pglast import parser

    try:
        tokens = parser.scan(text)
    except parser.ParseError as e:
        raise ValueError(str(e)) from None
    stmts: list[str] = []
    start = 0
    content = False
    for tok in tokens:
        if tok.name == "ASCII_59":  # ';'
            if content:
                stmts.append(text[start : tok.start].strip())
            start = tok.end + 1
            content = False
        elif tok.name not in ("SQL_COMMENT", "C_COMMENT"):
            content = True
    rest = text[start:] if content else ""
    return stmts, rest.strip()


def all_statements(text: str) -> list[str]:
    """Every statement in ``text``, the last one with or without its ``;``."""
    try:
        stmts, rest = split_sql(text)
    except ValueError:
        return [text]  # let the database report the open string or comment, with its SQLSTATE
    return stmts + ([rest] if rest else [])


# --- running statements -----------------------------------------------------------------------


def render(cur: Any) -> str:
    """What a finished statement prints: its rows as a table, and/or its status."""
    status = getattr(cur, "statusmessage", "") or ""
    if status == "EMPTY":
        status = ""
    if cur.description is not None:
        columns = [d[0] for d in cur.description]
        text = format_table(columns, cur.fetchall())
        if status and not status.startswith(("SELECT", "SHOW", "EXPLAIN")):
            text += "\n" + status
        return text
    return status


def print_error(e: BaseException, err: TextIO) -> None:
    if isinstance(e, reeldb.Error):
        message, sqlstate = e.message or type(e).__name__, e.sqlstate
    elif isinstance(e, KeyboardInterrupt):
        message, sqlstate = "canceling statement due to user request", "57014"
    else:
        message, sqlstate = f"internal error: {type(e).__name__}: {e}", "XX000"
    print(f"ERROR:  {message}", file=err)
    print(f"SQLSTATE: {sqlstate}", file=err)


def run_statement(db: Any, sql: str, out: TextIO, err: TextIO, timing: bool = False) -> bool:
    """Run one statement and print its result; print the error and return False on failure."""
    start = time.perf_counter()
    try:
        cur = db.execute(sql)
        text = render(cur)
    except (Exception, KeyboardInterrupt) as e:
        print_error(e, err)
        return False
    for notice in getattr(cur, "notices", None) or []:
        print(f"NOTICE:  {notice}", file=err)
    if text:
        print(text, file=out)
    if timing:
        print(f"Time: {(time.perf_counter() - start) * 1000:.3f} ms", file=out)
    return True


# --- the interactive shell ------------------------------------------------------------------


class Shell:
    """``reeldb sql PATH`` without ``-c``: psql-like, statements end with ``;``."""

    def __init__(self, db: Any, stdin: TextIO | None = None, out: TextIO | None = None,
                 err: TextIO | None = None, interactive: bool | None = None):
        self.db = db
        self.stdin = stdin or sys.stdin
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.interactive = self.stdin.isatty() if interactive is None else interactive
        self.timing = False
        self.failed = False

    def prompt(self, continuation: bool) -> str:
        if not self.interactive:
            return ""
        name = self.db.current_branch or (self.db.head or "")[:SHORT_ID]
        return f"reeldb:{name}{'-' if continuation else ''}> "

    def read(self, continuation: bool) -> str | None:
        if self.interactive and self.stdin is sys.stdin:
            try:
                return input(self.prompt(continuation))
            except EOFError:
                print(file=self.out)
                return None
        line = self.stdin.readline()
        return None if line == "" else line.rstrip("\n")

    def run(self) -> int:
        """Read and run statements until ``\\q`` or EOF. Returns the exit status: when
        reading a script (stdin not a terminal) the first error stops it with status 1."""
        with self._history():
            if self.interactive:
                print(f"reeldb {reeldb.__version__} — type \\? for help, \\q to quit", file=self.out)
            buf = ""
            while True:
                try:
                    line = self.read(bool(buf))
                except KeyboardInterrupt:  # Ctrl-C at the prompt drops the unfinished statement
                    print(file=self.out)
                    buf = ""
                    continue
                if line is None:
                    break
                if not buf and line.strip().startswith("\\"):
                    if not self.command(line.strip()):
                        break
                    continue
                buf = f"{buf}\n{line}" if buf else line
                try:
                    stmts, rest = split_sql(buf)
                except ValueError:  # a string or comment is still open
                    continue
                for sql in stmts:
                    if not self.execute(sql) and not self.interactive:
                        return 1
                buf = rest
            if buf.strip() and not self.interactive:
                # a script's last statement may lack its ';'
                for sql in all_statements(buf):
                    if not self.execute(sql):
                        return 1
        return 1 if self.failed and not self.interactive else 0

    def execute(self, sql: str) -> bool:
        ok = run_statement(self.db, sql, self.out, self.err, self.timing)
        if self.interactive:
            print(file=self.out)
        if not ok:
            self.failed = True
        return ok

    def command(self, line: str) -> bool:
        """Run a backslash command; False means quit."""
        name, _, arg = line.partition(" ")
        arg = arg.strip()
        try:
            if name in ("\\q", "\\quit"):
                return False
            if name in ("\\?", "\\h", "\\help"):
                print(SHELL_HELP, file=self.out)
            elif name in ("\\dt", "\\d"):
                print(format_table(["table"], [(t,) for t in self.db.tables()]), file=self.out)
            elif name == "\\c":
                if not arg:
                    print(f"on branch {self.db.current_branch}", file=self.out)
                else:
                    self.db.checkout(arg)
                    print(f"switched to branch {arg}", file=self.out)
            elif name == "\\timing":
                self.timing = not self.timing if not arg else arg.lower() in ("on", "true", "1")
                print(f"Timing is {'on' if self.timing else 'off'}.", file=self.out)
            else:
                print(f"invalid command {name}; try \\? for help", file=self.err)
                self.failed = True
                return self.interactive
        except (Exception, KeyboardInterrupt) as e:
            print_error(e, self.err)
            self.failed = True
            return self.interactive
        return True

    @contextlib.contextmanager
    def _history(self) -> Iterator[None]:
        readline = None
        path = os.path.expanduser(from_environment().history_file)
        if self.interactive and self.stdin is sys.stdin:
            try:
                import readline  # noqa: F811 - optional: absent on some platforms
            except ImportError:
                readline = None
        if readline is not None:
            with contextlib.suppress(OSError):
                readline.read_history_file(path)
            readline.set_history_length(HISTORY_LENGTH)
        try:
            yield
        finally:
            if readline is not None:
                with contextlib.suppress(OSError):
                    readline.write_history_file(path)


# --- commands -------------------------------------------------------------------------------


def _open(path: str, branch: str | None = None, create: bool = False) -> Any:
    """Connect; the read-only tools refuse a path that is not a database (and create nothing)."""
    if not create and "://" not in path and not Path(path).is_dir():
        raise reeldb.OperationalError(f"no reeldb database at {path}", sqlstate="3D000")
    kwargs: dict[str, Any] = {} if create else {"create": False}
    if branch:
        kwargs["branch"] = branch
    return reeldb.connect(path, **kwargs)


def cmd_sql(args: argparse.Namespace) -> int:
    with _open(args.path, args.branch, create=True) as db:
        if args.command:
            for text in args.command:
                for sql in all_statements(text):
                    if not run_statement(db, sql, sys.stdout, sys.stderr):
                        return 1
            return 0
        return Shell(db).run()


def cmd_tables(args: argparse.Namespace) -> int:
    with _open(args.path, args.branch) as db:
        for name in db.tables():
            print(name)
    return 0


def cmd_log(args: argparse.Namespace) -> int:
    with _open(args.path) as db:
        entries = db.log(branch=args.branch, table=args.table, limit=args.n)
        width = max((len(str(e.get("author") or "")) for e in entries), default=0)
        lines = graph(entries) if args.graph else [("", e) for e in entries]
        for prefix, e in lines:
            if e is None:
                print(prefix)
                continue
            t = e["time"]
            when = t.astimezone().strftime("%Y-%m-%d %H:%M:%S %z") if isinstance(t, dt.datetime) else str(t)
            message = (e.get("message") or "").splitlines()
            author = str(e.get("author") or "")
            counts = _counts(e.get("tables") or {})
            lead = f"{prefix}  " if prefix else ""
            print(f"{lead}{short_id(str(e['id']))}  {when}  {author:<{width}}  "
                  f"{message[0] if message else ''}{counts}".rstrip())
    return 0


def _counts(tables: dict[str, dict[str, int]]) -> str:
    ins = sum(t["inserted"] for t in tables.values())
    dele = sum(t["deleted"] for t in tables.values())
    upd = sum(t["updated"] for t in tables.values())
    parts = [f"{sign}{n}" for sign, n in (("+", ins), ("-", dele), ("~", upd)) if n]
    return f"  ({' '.join(parts)})" if parts else ""


def graph(entries: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any] | None]]:
    """``git log --graph``-style lanes: (graph text, commit) rows, and connector rows
    (text, None) where lanes fork or join. ``entries`` are newest first."""
    lanes: list[str] = []
    out: list[tuple[str, dict[str, Any] | None]] = []
    for e in entries:
        cid = e["id"]
        if cid not in lanes:
            lanes.append(cid)
        col = lanes.index(cid)
        joined = [i for i, lane in enumerate(lanes) if lane == cid and i != col]
        if joined:
            out.append(("".join("/" if i in joined else "|" for i in range(len(lanes))).rstrip(), None))
            lanes = [lane for i, lane in enumerate(lanes) if i not in joined]
        out.append((" ".join("*" if i == col else "|" for i in range(len(lanes))), e))
        parents = [p for p in e["parents"]]
        if not parents:
            lanes.pop(col)
            continue
        lanes[col] = parents[0]
        for p in parents[1:]:
            if p not in lanes:
                lanes.insert(col + 1, p)
                out.append(("".join("\\" if i == col + 1 else "|" for i in range(len(lanes))), None))
    width = max((len(p) for p, e in out if e is not None), default=0)
    return [(p.ljust(width) if e is not None else p, e) for p, e in out]


def cmd_diff(args: argparse.Namespace) -> int:
    with _open(args.path) as db:
        d = db.diff(args.a, args.b, table=args.table)
        if not d:
            print("no differences")
            return 0
        for name, td in d.items():
            head = f"{name} ({td.status}): +{td.added.num_rows} added, -{td.removed.num_rows} removed, " \
                   f"~{td.changed_rows} changed"
            print(head)
            for change in td.schema_changes:
                print(f"  schema: {change}")
            for label, t in (("added", td.added), ("removed", td.removed)):
                if t.num_rows:
                    shown = t.slice(0, args.limit)
                    print(f"  {label}:")
                    rows = [tuple(r.values()) for r in shown.to_pylist()]
                    print(_indent(format_table(shown.column_names, rows)))
                    if t.num_rows > args.limit:
                        print(f"  ... {t.num_rows - args.limit} more")
            if td.changed.num_rows:
                shown = td.changed.slice(0, args.limit)
                print("  changed cells:")
                print(_indent(format_table(shown.column_names, [tuple(r.values()) for r in shown.to_pylist()])))
                if td.changed.num_rows > args.limit:
                    print(f"  ... {td.changed.num_rows - args.limit} more")
    return 0


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def cmd_merge(args: argparse.Namespace) -> int:
    with _open(args.path) as db:
        into = args.into or "main"
        try:
            r = db.merge(args.source, into=into, strategy=args.strategy, message=args.message)
        except reeldb.MergeConflict as e:
            print(f"merge of {args.source} into {into}: {len(e.conflicts)} conflict(s), nothing written",
                  file=sys.stderr)
            rows = [(c.table, c.row_name().strip() or "", c.column, c.kind, format_value(c.base),
                     format_value(c.ours), format_value(c.theirs)) for c in e.conflicts]
            print(format_table(["table", "row", "column", "kind", "base", "ours", "theirs"], rows),
                  file=sys.stderr)
            print("resolve with --strategy ours or --strategy theirs", file=sys.stderr)
            return 1
        if r.up_to_date:
            print(f"{into} already contains {args.source}")
        elif r.fast_forward:
            print(f"fast-forward {into} to {short_id(r.commit)}")
        else:
            stats = ", ".join(f"{t} +{s[0]} -{s[1]} ~{s[2]}" for t, s in r.stats.items()) or "no row changes"
            print(f"merged {args.source} into {into}: {short_id(r.commit)} ({stats})")
            if r.conflicts:
                print(f"{len(r.conflicts)} conflict(s) resolved as {args.strategy}")
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    with _open(args.path) as db:
        if args.delete:
            db.delete_tag(args.delete)
            print(f"deleted tag {args.delete}")
        elif args.name is None:
            for name, commit in sorted(db.tags().items()):
                print(f"{name}  {short_id(commit)}")
        else:
            commit = db.tag(args.name, at=args.at)
            print(f"tagged {short_id(commit)} as {args.name}")
    return 0


def cmd_optimize(args: argparse.Namespace) -> int:
    with _open(args.path, args.branch) as db:
        done = db.optimize(args.table)
    if not done:
        print("nothing to compact")
    for c in done:
        print(f"{c['table']}: {c['fragments_before']} -> {c['fragments_after']} fragments, "
              f"{c['rows_rewritten']} rows rewritten")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .server.server import ServerOptions, run
    from .sql.session import parse_duration_ms

    ssl_context = None
    if args.tls_cert or args.tls_key:
        from .server.tls import server_context

        if not (args.tls_cert and args.tls_key):
            raise reeldb.ProgrammingError("TLS needs both --tls-cert and --tls-key")
        try:
            ssl_context = server_context(args.tls_cert, args.tls_key)
        except ValueError as e:
            raise reeldb.ProgrammingError(str(e)) from None
    return run(ServerOptions(args.path, host=args.host, port=args.port, max_connections=args.max_connections,
                             max_message=args.max_message, idle_exit=args.idle_exit, ssl_context=ssl_context,
                             statement_timeout_ms=parse_duration_ms(args.statement_timeout),
                             authentication_timeout=args.authentication_timeout,
                             max_pending_logins=args.max_pending_logins,
                             statement_memory=None if args.statement_memory.lower() == "none" else args.statement_memory))


def cmd_ui(args: argparse.Namespace) -> int:
    from .sql.session import parse_duration_ms
    from .ui import check_bind, start

    check_bind(args.host, args.login is not None)  # before opening anything
    db = reeldb.connect(args.path, create=False)
    logins = _DatabaseUsers(args.path, db) if args.login == "users" else None
    embed = _import_function(args.embed) if args.embed else None
    start(db, host=args.host, port=args.port, branch=args.branch, login=args.login or False, logins=logins,
          statement_timeout_ms=parse_duration_ms(args.statement_timeout), background=False, owned=True,
          announce=lambda url: print(f"reeldb ui serving {args.path} at {url}", flush=True),
          label_branch=args.label_branch, label_column=args.label_column,
          connect_branch=lambda branch: reeldb.connect(args.path, branch=branch, create=False), embed=embed)
    return 0


def _import_function(spec: str) -> Any:
    """``module:function`` (``--embed``), imported as Python code the user chose to run."""
    import importlib

    module_name, sep, name = spec.partition(":")
    if not sep or not module_name or not name:
        raise errors.InvalidParameterValue(f"--embed takes module:function, not {spec!r}")
    try:
        function = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as e:
        raise errors.InvalidParameterValue(f"--embed {spec}: {e}") from None
    if not callable(function):
        raise errors.InvalidParameterValue(f"--embed {spec} is not a function")
    return function


class _DatabaseUsers:
    """``reeldb ui --login users``: the users ``reeldb user add`` made (the server's), each
    reading through a connection with its own rights."""

    def __init__(self, path: str, db: reeldb.Connection):
        from .server import users

        self._users = users
        self._path = path
        self._store = db.catalog.store
        if not users.list_users(self._store):
            raise errors.InvalidAuthorizationSpecification(
                "this database has no users to log in as: add one with `reeldb user add`, or use --login token")

    def authenticate(self, name: str, password: str) -> bool:
        return self._users.check_password(self._store, name, password) is not None

    def connect(self, name: str, branch: str | None = None) -> reeldb.Connection:
        from .sql.session import SessionOptions

        user = self._users.get_user(self._store, name)
        if user is None:
            raise errors.InvalidAuthorizationSpecification(f'no user "{name}"')
        db = reeldb.connect(self._path, branch=branch or "main", create=False)
        db.session.configure(SessionOptions(user=name, database="reeldb", rights=self._users.rights_of(user)))
        return db


def parse_duration(text: str) -> dt.timedelta:
    """``90s``, ``15m``, ``12h``, ``7d``, ``2w`` or a number of seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    t = text.strip().lower()
    try:
        if t and t[-1] in units:
            return dt.timedelta(seconds=float(t[:-1]) * units[t[-1]])
        return dt.timedelta(seconds=float(t))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 30m, 12h, 7d)") from None


def cmd_expire(args: argparse.Namespace) -> int:
    with _open(args.path) as db:
        n = db.expire(args.older_than)
    print(f"dropped {n} commit{'' if n == 1 else 's'} from history; run `reeldb vacuum` to free their files")
    return 0


def cmd_branch(args: argparse.Namespace) -> int:
    with _open(args.path) as db:
        if args.delete:
            db.delete_branch(args.delete)
            print(f"deleted branch {args.delete}")
            return 0
        if args.name is None:
            if args.ref is not None:
                raise reeldb.InterfaceError("--from needs a branch NAME to create")
            branches = db.branches()
            width = max((len(b["name"]) for b in branches), default=0)
            for b in branches:
                mark = "*" if b["current"] else " "
                flag = "  (protected)" if b.get("protected") else ""
                print(f"{mark} {b['name']:<{width}}  {short_id(str(b['commit']))}{flag}")
            return 0
        if args.ref is not None:
            commit = db.branch(args.name, checkout=False, at=args.ref)
        else:
            commit = db.branch(args.name, checkout=False)
        print(f"created branch {args.name} at {short_id(str(commit or db.head))}")
    return 0


def cmd_vacuum(args: argparse.Namespace) -> int:
    with _open(args.path) as db:
        out = db.vacuum(retain=args.retain, grace=args.grace)
    files, nbytes = int(out.get("files", 0)), int(out.get("bytes", 0))
    print(f"removed {files} file{'' if files == 1 else 's'}, {nbytes} bytes ({format_size(nbytes)})")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Scrub the database like ``git fsck``: a line per damaged or missing object, and a
    non-zero exit status when there is any. Opens the catalog without a session, so a
    damaged head commit is reported rather than refused at connect."""
    from .catalog.catalog import Catalog
    from .catalog.check import check
    from .catalog.refs import BRANCHES
    from .storage import open_store

    if "://" not in args.path and not Path(args.path).is_dir():
        raise reeldb.OperationalError(f"no reeldb database at {args.path}", sqlstate="3D000")
    # object storage without the local disk cache: a scrub verifies what the store holds
    remote = "://" in args.path and not args.path.lower().startswith("file://")
    store = open_store(args.path, create=False, options={"cache_size": 0} if remote else None)
    if not store.list(BRANCHES):
        store.close()
        raise reeldb.OperationalError(f"no reeldb database at {args.path}", sqlstate="3D000")
    catalog = Catalog(store)
    try:
        from tqdm.auto import tqdm

        with tqdm(unit="B", unit_scale=True, desc="checking", disable=not sys.stderr.isatty(),
                  leave=False, file=sys.stderr) as bar:
            report = check(catalog, all_history=args.all_history,
                           progress=lambda key, nbytes: bar.update(nbytes))
    finally:
        catalog.close()
    for problem in report.problems:
        print(problem)
    scope = "every commit in the history of every branch and tag" if args.all_history else \
        "the head of every branch and tag"
    summary = (f"checked {report.objects} objects, {format_size(report.bytes)}, in {report.commits} "
               f"commit{'' if report.commits == 1 else 's'} ({scope})")
    if report.unverified:
        summary += f"; {report.unverified} written before checksums were recorded: read, not verified"
    print(summary, file=sys.stderr)
    if report.problems:
        n = len(report.problems)
        print(f"{n} damaged or missing object{'' if n == 1 else 's'}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="reeldb",
        description="reeldb: one database for generative-video pipelines.",
        epilog="PATH is a database folder (created by `reeldb sql` if missing).",
    )
    p.add_argument("--version", action="version", version=f"reeldb {reeldb.__version__}")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", required=True)

    s = sub.add_parser("sql", help="run SQL, or open an interactive shell",
                       description="Run SQL with -c, or read statements from the terminal (an "
                                   "interactive shell) or from stdin (a script; stops at the "
                                   "first error). Statements end with ';'.")
    s.add_argument("path", metavar="PATH")
    s.add_argument("-c", dest="command", metavar="SQL", action="append",
                   help="statement(s) to run; may be repeated; stops at the first error")
    s.add_argument("--branch", metavar="B", help="branch to read and write (default main)")
    s.set_defaults(func=cmd_sql)

    s = sub.add_parser("tables", help="list the tables")
    s.add_argument("path", metavar="PATH")
    s.add_argument("--branch", metavar="B", help="branch to look at (default main)")
    s.set_defaults(func=cmd_tables)

    s = sub.add_parser("log", help="show commits, newest first")
    s.add_argument("path", metavar="PATH")
    s.add_argument("--branch", metavar="B", help="branch, tag or commit to start from (default main)")
    s.add_argument("-n", type=int, metavar="N", help="show at most N commits")
    s.add_argument("--table", metavar="T", help="only commits that changed table T")
    s.add_argument("--graph", action="store_true", help="draw branches and merges")
    s.set_defaults(func=cmd_log)

    s = sub.add_parser("branch", help="list branches, or create one (without switching)")
    s.add_argument("path", metavar="PATH")
    s.add_argument("name", metavar="NAME", nargs="?", help="branch to create")
    s.add_argument("--from", dest="ref", metavar="REF",
                   help="branch, tag or commit the new branch starts at (default main's head)")
    s.add_argument("-d", "--delete", metavar="NAME", help="delete branch NAME")
    s.set_defaults(func=cmd_branch)

    s = sub.add_parser("tag", help="list tags, or tag a commit")
    s.add_argument("path", metavar="PATH")
    s.add_argument("name", metavar="NAME", nargs="?", help="tag to create")
    s.add_argument("--at", metavar="REF", help="branch, tag or commit to tag (default main's head)")
    s.add_argument("-d", "--delete", metavar="NAME", help="delete tag NAME")
    s.set_defaults(func=cmd_tag)

    s = sub.add_parser("diff", help="rows added, removed and changed between two refs")
    s.add_argument("path", metavar="PATH")
    s.add_argument("a", metavar="A", help="branch, tag or commit")
    s.add_argument("b", metavar="B", nargs="?", help="branch, tag or commit (default main)")
    s.add_argument("--table", metavar="T", help="only table T")
    s.add_argument("--limit", type=int, default=20, metavar="N", help="rows shown per section (default 20)")
    s.set_defaults(func=cmd_diff)

    s = sub.add_parser("merge", help="merge a branch (three-way, by row and cell)")
    s.add_argument("path", metavar="PATH")
    s.add_argument("source", metavar="SOURCE", help="branch, tag or commit to merge")
    s.add_argument("--into", metavar="B", help="branch to merge into (default main)")
    s.add_argument("--strategy", choices=["fail", "ours", "theirs"], default="fail",
                   help="how conflicts end: fail (default, writes nothing), ours or theirs")
    s.add_argument("-m", dest="message", metavar="MSG", help="commit message")
    s.set_defaults(func=cmd_merge)

    s = sub.add_parser("optimize", help="compact small and mostly-deleted fragments")
    s.add_argument("path", metavar="PATH")
    s.add_argument("table", metavar="TABLE", nargs="?", help="only this table")
    s.add_argument("--branch", metavar="B", help="branch to compact (default main)")
    s.set_defaults(func=cmd_optimize)

    s = sub.add_parser("vacuum", help="delete files that no branch or tag reaches")
    s.add_argument("path", metavar="PATH")
    s.add_argument("--retain", type=parse_duration, metavar="AGE",
                   help="keep time travel only this far back (e.g. 7d); default: all history")
    s.add_argument("--grace", type=parse_duration, default=dt.timedelta(hours=1), metavar="AGE",
                   help="never delete files younger than this (default 1h): a writer may still commit them")
    s.set_defaults(func=cmd_vacuum)

    s = sub.add_parser("expire", help="drop commits older than an age from history")
    s.add_argument("path", metavar="PATH")
    s.add_argument("--older-than", type=parse_duration, required=True, metavar="AGE",
                   help="e.g. 30d; branch and tag heads are always kept")
    s.set_defaults(func=cmd_expire)

    s = sub.add_parser("check", help="verify every stored object against its checksum (like git fsck)",
                       description="Read every object the branches and tags reach and verify it "
                                   "against the checksum recorded where it is named. Prints one line "
                                   "per damaged or missing object, naming it and what reaches it; "
                                   "exits with status 1 when there is any.")
    s.add_argument("path", help="database folder or URL (s3://...)")
    s.add_argument("--all-history", action="store_true",
                   help="check every commit in the history of each branch and tag, not just the heads")
    s.set_defaults(func=cmd_check)

    s = sub.add_parser("serve", help="serve the database over the Postgres wire protocol")
    s.add_argument("path", metavar="PATH")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=5433, help="port (default 5433)")
    s.add_argument("--max-connections", type=int, default=100, metavar="N", help="clients at once (default 100)")
    s.add_argument("--max-message", type=int, default=64 << 20, metavar="BYTES",
                   help="largest protocol message accepted (default 64 MiB)")
    s.add_argument("--statement-timeout", default="0", metavar="DURATION",
                   help="cancel statements that run longer, e.g. 30s (default 0: never); SET statement_timeout overrides")
    s.add_argument("--statement-memory", default="2GB", metavar="SIZE",
                   help="DuckDB's memory limit for the queries running at once, e.g. 4GB; past it a "
                        "statement fails with 53200 (default 2GB; 'none': DuckDB's default, 80%% of RAM)")
    s.add_argument("--authentication-timeout", type=float, default=60.0, metavar="SECONDS",
                   help="close a client that has not logged in by then (default 60)")
    s.add_argument("--max-pending-logins", type=int, default=64, metavar="N",
                   help="connections still logging in; past it the oldest is closed (default 64)")
    s.add_argument("--idle-exit", type=float, metavar="SECONDS",
                   help="stop once no client has been connected for this long")
    s.add_argument("--tls-cert", metavar="FILE", help="PEM certificate: answer SSLRequest and serve TLS")
    s.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert")
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("ui", help="look at the data in a browser (grid, video, filters, similarity, diffs)")
    s.add_argument("path", metavar="PATH_OR_URL")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; "
                                                        "any other needs --login)")
    s.add_argument("--port", type=int, default=8700, help="port (default 8700; 0 picks a free one)")
    s.add_argument("--branch", metavar="B", help="branch, tag or commit shown first (default main)")
    s.add_argument("--login", nargs="?", const="token", choices=["token", "users"],
                   help="require a login on every request: a token (the default, printed at start in "
                        "the link), or 'users': the database's users (reeldb user add), by password")
    s.add_argument("--statement-timeout", default="30s", metavar="DURATION",
                   help="cancel a page's query that runs longer (default 30s)")
    s.add_argument("--embed", metavar="MODULE:FUNCTION",
                   help="a function from text to a vector: the grid can then be ordered by similarity to a typed text")
    s.add_argument("--label-branch", metavar="B",
                   help="turn on A/B labelling: labels are committed to branch B (made from --branch if missing)")
    s.add_argument("--label-column", default="human_preference", metavar="C",
                   help="the JSONB column labels are written to (default human_preference)")
    s.set_defaults(func=cmd_ui)

    from .server.users import register_cli

    register_cli(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except reeldb.Error as e:
        print(f"ERROR: {e.message or type(e).__name__}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:
        # output piped into `head` and the like: stop quietly
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
