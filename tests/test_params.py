"""Parameter-style translation to Postgres ``$n`` (reeldb.sql.params)."""

from __future__ import annotations

import pglast
import pytest

from reeldb import errors
from reeldb.sql.params import Binder, compile_params, to_dollar_params


def _parses(sql: str) -> None:
    """The rewritten text must be something pglast accepts (ParamRef for $n)."""
    pglast.parse_sql(sql)


# --- each style -------------------------------------------------------------------


def test_format_style() -> None:
    sql, values = to_dollar_params("SELECT * FROM t WHERE a = %s AND b = %s", (1, "x"))
    assert sql == "SELECT * FROM t WHERE a = $1 AND b = $2"
    assert values == [1, "x"]
    _parses(sql)


def test_pyformat_style() -> None:
    sql, values = to_dollar_params(
        "SELECT * FROM t WHERE a = %(a)s AND b = %(b)s", {"b": 2, "a": 1}
    )
    assert sql == "SELECT * FROM t WHERE a = $1 AND b = $2"
    assert values == [1, 2]


def test_named_colon_style() -> None:
    sql, values = to_dollar_params(
        "SELECT id FROM clips ORDER BY cosine_similarity(e, :target_vec) DESC LIMIT :k",
        {"target_vec": [0.1, 0.2], "k": 5},
    )
    assert sql == "SELECT id FROM clips ORDER BY cosine_similarity(e, $1) DESC LIMIT $2"
    assert values == [[0.1, 0.2], 5]
    _parses(sql)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("WHERE a = :x", "WHERE a = $1"),
        ("VALUES (:x, :y)", "VALUES ($1, $2)"),
        ("SELECT :x", "SELECT $1"),
        ("SELECT :x, :y", "SELECT $1, $2"),
    ],
)
def test_named_colon_positions(sql: str, expected: str) -> None:
    assert to_dollar_params(sql, {"x": 1, "y": 2})[0] == expected


def test_dollar_style_keeps_numbering() -> None:
    sql, values = to_dollar_params("SELECT $2, $1, $2", ("a", "b"))
    assert sql == "SELECT $2, $1, $2"
    assert values == ["a", "b"]


def test_dollar_inside_identifier_is_not_a_param() -> None:
    sql, values = to_dollar_params("SELECT a$1 FROM t", None)
    assert sql == "SELECT a$1 FROM t"
    assert values == []


def test_repeated_named_params_share_one_slot() -> None:
    sql, values = to_dollar_params("SELECT :a, :b, :a WHERE x = :b", {"a": 1, "b": 2})
    assert sql == "SELECT $1, $2, $1 WHERE x = $2"
    assert values == [1, 2]
    sql, values = to_dollar_params("SELECT %(a)s, %(a)s", {"a": 7})
    assert sql == "SELECT $1, $1"
    assert values == [7]


def test_named_extra_keys_are_ignored() -> None:
    # Passing a whole row dict is common; only the referenced keys are bound.
    assert to_dollar_params("SELECT :a", {"a": 1, "unused": 2}) == ("SELECT $1", [1])


def test_no_placeholders_no_params() -> None:
    assert to_dollar_params("SELECT 1", None) == ("SELECT 1", [])
    assert to_dollar_params("SELECT 1", ()) == ("SELECT 1", [])
    assert to_dollar_params("SELECT 1", {}) == ("SELECT 1", [])


def test_multi_statement_shares_numbering() -> None:
    sql, values = to_dollar_params("INSERT INTO t VALUES (%s); SELECT %s", (1, 2))
    assert sql == "INSERT INTO t VALUES ($1); SELECT $2"
    assert values == [1, 2]


# --- what the scanner skips -----------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 'a:b', ':x', '%s', '$1', 'it''s :x %s', ",
        "SELECT E'it\\'s :x %s', e'\\\\', ",
        'SELECT "col:x", "%s", "we""ird :x", ',
        "SELECT $$ :x %s $1 $$, ",
        "SELECT $fn$ it's :x %s $$ $fn$, ",
        "SELECT 1 -- :x %s $1 \n, ",
        "SELECT /* :x %s /* nested :y */ still %s */ ",
    ],
)
def test_skips_quoted_and_commented_text(sql: str) -> None:
    rewritten, values = to_dollar_params(sql + "%s", ("v",))
    assert rewritten == sql + "$1"
    assert values == ["v"]


def test_e_string_backslash_quote_does_not_end_string() -> None:
    # In a standard string a backslash is literal, so 'a\' ends there; in E'' it escapes.
    assert to_dollar_params("SELECT 'a\\', %s", (1,))[0] == "SELECT 'a\\', $1"
    assert to_dollar_params("SELECT E'a\\', %s'", None) == ("SELECT E'a\\', %s'", [])


def test_casts_and_assignments_are_not_params() -> None:
    sql = "SELECT x::int, y :: text, f(a := 1), '{1}'::int[] FROM t WHERE z = :z"
    rewritten, values = to_dollar_params(sql, {"z": 3})
    assert rewritten == ("SELECT x::int, y :: text, f(a := 1), '{1}'::int[] FROM t WHERE z = $1")
    assert values == [3]
    _parses(rewritten)


def test_param_followed_by_cast() -> None:
    assert to_dollar_params("SELECT :v::vector", {"v": "[1,2]"})[0] == "SELECT $1::vector"
    assert to_dollar_params("SELECT %s::int", (1,))[0] == "SELECT $1::int"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT arr[1:2] FROM t",
        "SELECT arr[lo:hi] FROM t",
        "SELECT arr[lo : hi] FROM t",
        "SELECT arr[:hi] FROM t",
        "SELECT (f(x))[lo:hi] FROM t",
        "SELECT arr[1][lo:hi] FROM t",
    ],
)
def test_slices_are_not_params(sql: str) -> None:
    assert to_dollar_params(sql, None) == (sql, [])
    _parses(sql)


def test_array_constructor_and_parenthesised_subscript_take_params() -> None:
    sql, values = to_dollar_params(
        "SELECT ARRAY[:a, :b], arr[(:i)], arr[:hi]",
        {
            "a": 1,
            "b": 2,
            "i": 3,
        },
    )
    assert sql == "SELECT ARRAY[$1, $2], arr[($3)], arr[:hi]"
    assert values == [1, 2, 3]
    _parses(sql)


def test_struct_like_colons_are_not_params() -> None:
    assert to_dollar_params("SELECT {'k':v}, a:b", None)[0] == "SELECT {'k':v}, a:b"


def test_double_percent_becomes_percent_with_format_params() -> None:
    sql, values = to_dollar_params("SELECT a %% 2, '100%%' FROM t WHERE b = %s", (1,))
    assert sql == "SELECT a % 2, '100%' FROM t WHERE b = $1"
    assert values == [1]


def test_lone_percent_is_modulo_without_params() -> None:
    assert to_dollar_params("SELECT 10 % 3, a%b", None) == ("SELECT 10 % 3, a%b", [])
    assert to_dollar_params("SELECT 10 % 3", ()) == ("SELECT 10 % 3", [])
    # psycopg leaves the text untouched when no params are given at all.
    assert to_dollar_params("SELECT 10 %% 3", None) == ("SELECT 10 %% 3", [])
    # ... and unescapes it when params (even empty) are given.
    assert to_dollar_params("SELECT 10 %% 3", ()) == ("SELECT 10 % 3", [])


def test_percent_is_modulo_with_other_styles() -> None:
    assert to_dollar_params("SELECT a % :m", {"m": 2}) == ("SELECT a % $1", [2])
    assert to_dollar_params("SELECT a % $1", (2,)) == ("SELECT a % $1", [2])


def test_percent_s_glued_to_identifier_is_not_a_placeholder() -> None:
    assert to_dollar_params("SELECT a%sum FROM t", None) == ("SELECT a%sum FROM t", [])


# --- errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "params", "message"),
    [
        ("SELECT %s, %s, %s", (1, 2), "the query has 3 placeholders but 2 parameters were given"),
        ("SELECT %s", (1, 2), "the query has 1 placeholder but 2 parameters were given"),
        ("SELECT %s", None, "the query has 1 placeholder but no parameters were given"),
        ("SELECT 1", (1,), "the query has 0 placeholders but 1 parameter was given"),
        ("SELECT '%s'", (1,), "the query has 0 placeholders but 1 parameter was given"),
        ("SELECT $1, $3", (1, 2), "the query uses parameters up to $3 but 2 parameters"),
        ("SELECT $1", (1, 2), "the query uses parameters up to $1 but 2 parameters"),
        ("SELECT $1", None, "no parameters were given"),
        ("SELECT :a, :b", {"a": 1}, "query parameter missing: b"),
        ("SELECT %(a)s", {}, "query parameter missing: a"),
        ("SELECT :a", None, "no parameters were given"),
        ("SELECT :a", (1,), "need a mapping of parameters, not tuple"),
        ("SELECT %s", {"a": 1}, "mapping of parameters cannot be bound"),
        ("SELECT 1", {"a": 1}, "mapping of parameters cannot be bound"),
        ("SELECT %s", "x", "must be a sequence or a mapping, not str"),
    ],
)
def test_bind_mismatch(sql: str, params: object, message: str) -> None:
    with pytest.raises(errors.ProgrammingError, match=message.replace("$", r"\$")) as info:
        to_dollar_params(sql, params)  # type: ignore[arg-type]
    assert info.value.sqlstate == "08P01"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT %s, :a",
        "SELECT %s, %(a)s",
        "SELECT :a, $1",
        "SELECT %(a)s, :a",
        "SELECT $1, %s",
    ],
)
def test_mixing_styles_is_an_error(sql: str) -> None:
    with pytest.raises(errors.ProgrammingError, match="cannot mix") as info:
        compile_params(sql, (1,))
    assert isinstance(info.value, errors.SyntaxError)
    assert info.value.position is not None


@pytest.mark.parametrize(
    "sql", ["SELECT %d", "SELECT a %b, %s", "SELECT %(a)d, %s", "SELECT %(a, %s"]
)
def test_malformed_percent_placeholders(sql: str) -> None:
    with pytest.raises(errors.SyntaxError, match="unsupported placeholder"):
        to_dollar_params(sql, (1,))


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT %s, 'abc", "unterminated quoted string"),
        ('SELECT %s, "abc', "unterminated quoted identifier"),
        ("SELECT %s, $$abc", "unterminated dollar-quoted string"),
        ("SELECT %s, /* a /* b */ c", "unterminated /\\* comment"),
    ],
)
def test_unterminated_text_is_a_syntax_error(sql: str, message: str) -> None:
    with pytest.raises(errors.SyntaxError, match=message) as info:
        to_dollar_params(sql, (1,))
    assert info.value.sqlstate == "42601"
    assert info.value.position == 12


def test_dollar_zero_is_undefined() -> None:
    with pytest.raises(errors.UndefinedParameter, match=r"no parameter \$0"):
        to_dollar_params("SELECT $0", (1,))


# --- realistic use ---------------------------------------------------------------


PIPELINE_INSERT = """
    INSERT INTO clips (
        video_id, start_s, end_s, caption,   -- caption from the VLM pass
        aesthetic, motion_score, 'ignored %s in a string',
        embedding, meta
    )
    VALUES (%s, %s, %s, %s, %s, %s,
            %s, %s::vector, %s::jsonb)
    ON CONFLICT (video_id, start_s) DO NOTHING
"""


def test_pipeline_insert_with_nine_format_params() -> None:
    row = ("vid-1", 0.0, 4.5, "a dog runs", 5.1, 0.3, "x", "[0.1,0.2]", '{"fps": 24}')
    sql, values = to_dollar_params(PIPELINE_INSERT, row)
    assert values == list(row)
    assert [f"${k}" in sql for k in range(1, 10)] == [True] * 9
    assert "$10" not in sql and "%s," not in sql.split("VALUES")[1]
    assert "'ignored %s in a string'" in sql
    assert "$8::vector, $9::jsonb" in sql


def test_executemany_reuses_compiled_binder() -> None:
    rows = [(i, f"clip-{i}", i * 0.5) for i in range(1000)]
    sql, bind = compile_params("INSERT INTO t VALUES (%s, %s, %s)", rows[0])
    assert sql == "INSERT INTO t VALUES ($1, $2, $3)"
    assert isinstance(bind, Binder)
    assert (bind.style, bind.count, bind.names) == ("format", 3, ())
    assert [bind(r) for r in rows] == [list(r) for r in rows]
    with pytest.raises(errors.ProgrammingError, match="3 placeholders but 2"):
        bind((1, 2))


def test_executemany_named_rows() -> None:
    rows = [{"id": i, "cap": str(i)} for i in range(3)]
    sql, bind = compile_params("UPDATE t SET cap = :cap WHERE id = :id AND :id > 0", rows[0])
    assert sql == "UPDATE t SET cap = $1 WHERE id = $2 AND $2 > 0"
    assert bind.names == ("cap", "id")
    assert [bind(r) for r in rows] == [["0", 0], ["1", 1], ["2", 2]]


def test_binder_accepts_other_sequences_and_returns_fresh_lists() -> None:
    _, bind = compile_params("SELECT %s, %s", None)
    assert bind(range(2)) == [0, 1]
    params = [1, 2]
    values = bind(params)
    assert values == params and values is not params


def test_compile_is_cached_per_text_and_hint() -> None:
    a = compile_params("SELECT %s", (1,))
    b = compile_params("SELECT %s", (2,))
    assert a[1] is b[1]
    assert compile_params("SELECT 5 %% 2", None)[0] == "SELECT 5 %% 2"
    assert compile_params("SELECT 5 %% 2", ())[0] == "SELECT 5 % 2"
