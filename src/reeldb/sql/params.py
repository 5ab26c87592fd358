"""Turn the parameter styles users write into Postgres ``$n`` placeholders.

reeldb parses SQL with pglast, which understands only ``$n`` (``ParamRef``), and
binds values through DuckDB, so every client style is rewritten to ``$n`` and the
values are returned as one positional list. Values are never spliced into the SQL.

Styles (one per statement text; mixing them is an error):

* ``%s`` -- psycopg ``format``; params is a sequence.
* ``%(name)s`` -- psycopg ``pyformat``; params is a mapping.
* ``:name`` -- SQLAlchemy ``text()`` / ``named``; params is a mapping.
* ``$1 .. $n`` -- already Postgres; params is a sequence, numbering is kept.

A named parameter used twice becomes one ``$n`` (one value). Multi-statement text
shares one numbering.

Nothing is recognised inside single-quoted strings (``''`` escapes), ``E'...'``
strings (backslash escapes), double-quoted identifiers, dollar-quoted strings,
``--`` comments or (nested) ``/* */`` comments.

``%`` rules follow psycopg: when the statement uses ``%s``/``%(name)s``, or params
were given and the statement has no other placeholders, ``%%`` becomes ``%``
everywhere (inside strings too, as psycopg does, so ported code keeps its meaning)
and ``%`` followed by a letter or a malformed ``%(`` is an error. Without params a
lone ``%`` (modulo) and ``%%`` are left alone; a ``%`` followed by a space or digit
is always left alone. ``%s`` directly followed by an identifier character (``a%sum``)
is not a placeholder.

``:name`` fires only when the ``:`` is not part of ``::`` (casts), is followed by a
letter or ``_`` (so ``:=`` never fires), and is not directly preceded by an
identifier character, ``]``, ``)``, or a quote (``x:y``, ``'k':v``). Slice rule:
directly inside a subscript ``arr[...]`` a ``:`` is always the slice separator, so
``arr[1:2]``, ``arr[lo:hi]`` and ``arr[:hi]`` are slices. Brackets of an ``ARRAY[...]``
constructor are not subscripts (``ARRAY[:a, :b]`` has two parameters), and neither
are parentheses nested in a subscript: write ``arr[(:i)]`` for a parameter index.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from reeldb import errors

Params = Sequence[Any] | Mapping[str, Any] | None

__all__ = ["Binder", "Params", "compile_params", "to_dollar_params"]

# Postgres' code for a Bind message whose parameter count does not fit the statement.
_BIND_MISMATCH = "08P01"

# Characters where the scanner has to look closer; everything else is copied as is.
_SPECIAL = re.compile(r"""['"$%:\[\]()]|--|/\*""")
_STD_STRING = re.compile(r"'[^']*(?:''[^']*)*'")
_ESC_STRING = re.compile(r"'[^'\\]*(?:(?:''|\\.)[^'\\]*)*'", re.S)
_QUOTED_IDENT = re.compile(r'"[^"]*(?:""[^"]*)*"')
_COMMENT_EDGE = re.compile(r"/\*|\*/")
# ``$12`` (parameter) or ``$tag$`` / ``$$`` (dollar quote); a tag never starts with a digit.
_DOLLAR = re.compile(r"\$(?:(\d+)|((?:[^\W\d]\w*)?)\$)")
_PYFORMAT = re.compile(r"%\(([^)]+)\)s")
_NAME = re.compile(r"[^\W\d]\w*")
# A ':' directly after one of these is not a parameter (``x:y``, ``a[i]:j``, ``'k':v``).
_COLON_BLOCKERS = frozenset(":])'\"")

# Placeholder kinds found by the scanner, named after PEP 249 paramstyles.
_FORMAT, _PYFORMAT_KIND, _NAMED, _DOLLAR_KIND = "format", "pyformat", "named", "dollar"
_SPELLING = {_FORMAT: "%s", _PYFORMAT_KIND: "%(name)s", _NAMED: ":name", _DOLLAR_KIND: "$n"}

_CACHE_MAX_SQL = 16_384  # longer texts (bulk literals) are not worth keeping in memory


def _is_ident(c: str) -> bool:
    return c.isalnum() or c == "_" or c == "$"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _bind_error(message: str) -> errors.ProgrammingError:
    return errors.ProgrammingError(message, sqlstate=_BIND_MISMATCH)


class Binder:
    """Maps one row of user parameters to the ordered values for the rewritten SQL.

    Built once per statement text, so ``executemany`` scans the SQL once and each row
    only pays for a length check or a few dict lookups.

    ``style`` is the PEP 249 style found (``None`` when the SQL has no placeholders),
    ``count`` the number of ``$n`` values the rewritten SQL needs, ``names`` the
    mapping keys in ``$1..$n`` order for the named styles (empty otherwise).
    """

    __slots__ = ("count", "names", "style")

    def __init__(self, style: str | None, count: int, names: tuple[str, ...] = ()) -> None:
        self.style = style
        self.count = count
        self.names = names

    def __repr__(self) -> str:
        return f"Binder(style={self.style!r}, count={self.count}, names={self.names!r})"

    def __call__(self, params: Params) -> list[Any]:
        if self.names:
            return self._named(params)
        return self._positional(params)

    def _named(self, params: Params) -> list[Any]:
        if type(params) is not dict and not isinstance(params, Mapping):
            if params is None:
                raise _bind_error(
                    f"the query has {_plural(self.count, 'named placeholder')} "
                    f"({', '.join(self.names)}) but no parameters were given"
                )
            raise _bind_error(
                f"{_SPELLING[self.style or _NAMED]} placeholders need a mapping of "
                f"parameters, not {type(params).__name__}"
            )
        try:
            return [params[name] for name in self.names]
        except KeyError:
            missing = ", ".join(name for name in self.names if name not in params)
            raise _bind_error(f"query parameter missing: {missing}") from None

    def _positional(self, params: Params) -> list[Any]:
        t = type(params)
        if t is list or t is tuple:
            values: list[Any] = list(params)  # type: ignore[arg-type]
        elif params is None:
            if self.count:
                raise _bind_error(f"{self._needs()} but no parameters were given")
            return []
        elif isinstance(params, Mapping):
            if self.count or params:
                what = _SPELLING[self.style] if self.style else "no"
                raise _bind_error(
                    f"the query has {what} placeholders, so a mapping of parameters "
                    f"cannot be bound to it"
                )
            return []
        elif isinstance(params, (str, bytes, bytearray)):
            raise _bind_error(
                f"parameters must be a sequence or a mapping, not {type(params).__name__}"
            )
        else:
            values = list(params)
        if len(values) != self.count:
            raise _bind_error(
                f"{self._needs()} but {_plural(len(values), 'parameter')} "
                f"{'was' if len(values) == 1 else 'were'} given"
            )
        return values

    def _needs(self) -> str:
        if self.style == _DOLLAR_KIND:
            return f"the query uses parameters up to ${self.count}"
        return f"the query has {_plural(self.count, 'placeholder')}"


_NO_PARAMS = Binder(None, 0)


def _syntax_error(message: str, index: int) -> errors.SyntaxError:
    return errors.SyntaxError(f"{message} at position {index + 1}", position=index + 1)


def _scan(sql: str) -> tuple[list[str], list[tuple[str, Any, int]], list[int]]:
    """One pass over ``sql``: literal chunks, placeholders between them, and bad ``%``s.

    ``chunks[k]`` is the text before placeholder ``k``; the last chunk follows the last
    placeholder. Placeholders are ``(kind, key, index)``; ``key`` is the name, the
    ``$n`` number, or ``None`` for ``%s``.
    """
    chunks: list[str] = []
    marks: list[tuple[str, Any, int]] = []
    bad_percent: list[int] = []
    # Open brackets: "(" paren, "[" subscript (':' there is a slice), "A" other bracket.
    stack: list[str] = []
    n = len(sql)
    start = pos = 0
    search = _SPECIAL.search
    while (m := search(sql, pos)) is not None:
        i = m.start()
        c = sql[i]
        if c == "'":
            escaped = i > 0 and sql[i - 1] in "eE" and (i < 2 or not _is_ident(sql[i - 2]))
            s = (_ESC_STRING if escaped else _STD_STRING).match(sql, i)
            if s is None:
                raise _syntax_error("unterminated quoted string", i)
            pos = s.end()
        elif c == '"':
            s = _QUOTED_IDENT.match(sql, i)
            if s is None:
                raise _syntax_error("unterminated quoted identifier", i)
            pos = s.end()
        elif c == "-":  # "--" line comment
            end = sql.find("\n", i)
            pos = n if end < 0 else end + 1
        elif c == "/":  # "/*" comment; Postgres nests them
            depth, pos = 1, i + 2
            while depth:
                e = _COMMENT_EDGE.search(sql, pos)
                if e is None:
                    raise _syntax_error("unterminated /* comment", i)
                depth += 1 if e.group() == "/*" else -1
                pos = e.end()
        elif c == "$":
            pos = i + 1
            if i > 0 and _is_ident(sql[i - 1]):
                continue  # part of an identifier such as a$1
            d = _DOLLAR.match(sql, i)
            if d is None:
                continue
            if d.group(1) is not None:
                chunks.append(sql[start:i])
                marks.append((_DOLLAR_KIND, int(d.group(1)), i))
                start = pos = d.end()
            else:
                tag = d.group(0)
                close = sql.find(tag, d.end())
                if close < 0:
                    raise _syntax_error("unterminated dollar-quoted string", i)
                pos = close + len(tag)
        elif c == "%":
            nxt = sql[i + 1 : i + 2]
            pos = i + 1
            if nxt == "%":
                pos = i + 2  # stays in the chunk; unescaped later if %-style is on
            elif nxt == "s" and not (i + 2 < n and _is_ident(sql[i + 2])):
                chunks.append(sql[start:i])
                marks.append((_FORMAT, None, i))
                start = pos = i + 2
            elif nxt == "(":
                p = _PYFORMAT.match(sql, i)
                if p is None:
                    bad_percent.append(i)
                else:
                    chunks.append(sql[start:i])
                    marks.append((_PYFORMAT_KIND, p.group(1), i))
                    start = pos = p.end()
            elif nxt.isalpha():
                bad_percent.append(i)
        elif c == ":":
            pos = i + 1
            if sql[i + 1 : i + 2] == ":":
                pos = i + 2  # :: cast
                continue
            if i > 0 and (_is_ident(sql[i - 1]) or sql[i - 1] in _COLON_BLOCKERS):
                continue
            if stack and stack[-1] == "[":
                continue  # slice separator
            name = _NAME.match(sql, i + 1)
            if name is None:
                continue  # :=, lone colon
            chunks.append(sql[start:i])
            marks.append((_NAMED, name.group(), i))
            start = pos = name.end()
        elif c == "(":
            stack.append("(")
            pos = i + 1
        elif c == ")":
            if stack and stack[-1] == "(":
                stack.pop()
            pos = i + 1
        elif c == "[":
            stack.append(_bracket_kind(sql, i))
            pos = i + 1
        else:  # "]"
            if stack and stack[-1] != "(":
                stack.pop()
            pos = i + 1
    chunks.append(sql[start:])
    return chunks, marks, bad_percent


def _bracket_kind(sql: str, i: int) -> str:
    """``"["`` when the bracket at ``i`` subscripts a value, ``"A"`` for ``ARRAY[``."""
    j = i - 1
    while j >= 0 and sql[j].isspace():
        j -= 1
    if j < 0:
        return "A"
    c = sql[j]
    if c in ")]\"'":
        return "["
    if not _is_ident(c):
        return "A"
    is_array = sql[j - 4 : j + 1].upper() == "ARRAY" and (j < 5 or not _is_ident(sql[j - 5]))
    return "A" if is_array else "["


def _compile(sql: str, params_given: bool) -> tuple[str, Binder]:
    chunks, marks, bad_percent = _scan(sql)
    kinds = {kind for kind, _, _ in marks}
    if len(kinds) > 1:
        first = marks[0][0]
        other = next(mark for mark in marks if mark[0] != first)
        raise _syntax_error(
            f"cannot mix {_SPELLING[first]} and {_SPELLING[other[0]]} placeholders in one query",
            other[2],
        )
    kind = marks[0][0] if marks else None
    percent_style = kind in (_FORMAT, _PYFORMAT_KIND) or (kind is None and params_given)
    if percent_style:
        if bad_percent:
            i = bad_percent[0]
            raise _syntax_error(
                f"unsupported placeholder {sql[i : i + 2]!r}: only %s and %(name)s are "
                f"allowed; write %% for a literal %",
                i,
            )
        chunks = [chunk.replace("%%", "%") for chunk in chunks]
    if kind is None:
        return chunks[0], _NO_PARAMS

    out = [chunks[0]]
    if kind == _FORMAT:
        for k, chunk in enumerate(chunks[1:], 1):
            out += (f"${k}", chunk)
        binder = Binder(kind, len(marks))
    elif kind == _DOLLAR_KIND:
        for (_, number, index), chunk in zip(marks, chunks[1:]):
            if number == 0:
                raise errors.UndefinedParameter(
                    f"there is no parameter $0 at position {index + 1}", position=index + 1
                )
            out += (f"${number}", chunk)
        binder = Binder(kind, max(number for _, number, _ in marks))
    else:
        slots: dict[str, int] = {}
        for (_, name, _), chunk in zip(marks, chunks[1:]):
            slot = slots.setdefault(name, len(slots) + 1)
            out += (f"${slot}", chunk)
        binder = Binder(kind, len(slots), tuple(slots))
    return "".join(out), binder


_compile_cached = lru_cache(maxsize=512)(_compile)


def compile_params(sql: str, style_hint_params: Params) -> tuple[str, Binder]:
    """Rewrite ``sql`` to ``$n`` once and return a binder for each row of params.

    ``style_hint_params`` is only asked whether params were given at all (``None``
    or not), which decides whether ``%%`` means ``%`` when the text has no
    placeholders; ``executemany`` passes its first row and reuses the binder.
    Malformed or mixed placeholders raise :class:`reeldb.errors.SyntaxError`;
    params that do not fit raise :class:`reeldb.errors.ProgrammingError` (08P01)
    from the binder.
    """
    given = style_hint_params is not None
    if "%" not in sql and ":" not in sql and "$" not in sql:
        return sql, _NO_PARAMS  # fast path: nothing to rewrite
    if len(sql) <= _CACHE_MAX_SQL:
        return _compile_cached(sql, given)
    return _compile(sql, given)


def to_dollar_params(sql: str, params: Params) -> tuple[str, list[Any]]:
    """Rewrite ``sql`` to ``$n`` placeholders and return the values in ``$n`` order."""
    rewritten, bind = compile_params(sql, params)
    return rewritten, bind(params)
