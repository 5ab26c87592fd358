"""How the ``reeldb`` command prints values and tables, and how it splits SQL (no database)."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import numpy as np
import pytest

import reeldb
from reeldb.cli import all_statements, format_size, format_table, format_value, split_sql


def _blob(kind: str, length: int) -> reeldb.Blob:
    # formatting needs only the row's reference (kind, length); no store is touched
    ref = {"kind": kind, "data": None, "pack": "p", "offset": 0, "length": length, "meta": None}
    return reeldb.Blob(None, ref)  # type: ignore[arg-type]


# --- values -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "NULL"),
        (True, "true"),
        (False, "false"),
        (np.bool_(True), "true"),
        (42, "42"),
        (np.int64(-7), "-7"),
        (0.1, "0.1"),
        (1e-300, "1e-300"),
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        (float("-inf"), "-Infinity"),
        (decimal.Decimal("1.5000000000"), "1.5000000000"),
        ("a golden retriever", "a golden retriever"),
        ("", ""),
        ({"preferred": "v2", "raters": 3}, '{"preferred": "v2", "raters": 3}'),
        ([1, "a", None], '[1, "a", null]'),
        ({"ünï": "çødé"}, '{"ünï": "çødé"}'),
        (dt.datetime(2025, 1, 2, 3, 4, 5), "2025-01-02 03:04:05"),
        (dt.date(2025, 1, 2), "2025-01-02"),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
    ],
)
def test_scalars(value: object, text: str) -> None:
    assert format_value(value) == text


def test_real_columns_print_without_float32_noise() -> None:
    # a REAL 0.85 reaches Python as the double 0.8500000238418579
    assert format_value(float(np.float32(0.85))) == "0.85"
    assert format_value(np.float32(0.85)) == "0.85"
    # a genuine double keeps all its digits
    assert format_value(0.1 + 0.2) == "0.30000000000000004"
    assert format_value(1 / 3) == repr(1 / 3)


def test_text_stays_on_one_line() -> None:
    assert format_value("two\nlines\tand\ra bell\x07") == "two\\nlines\\tand\\ra bell\\x07"
    assert "\n" not in format_value({"note": "a\nb"})


@pytest.mark.parametrize(
    ("kind", "length", "text"),
    [
        ("video", 1_234_567, "<video 1.2 MB>"),
        ("image", 644, "<image 644 B>"),
        ("bytea", 2_893, "<bytea 2.9 KB>"),
        ("video", 0, "<video 0 B>"),
    ],
)
def test_blobs_show_kind_and_size_without_reading(kind: str, length: int, text: str) -> None:
    assert format_value(_blob(kind, length)) == text


def test_bytes() -> None:
    assert format_value(b"\x00\x01") == "<bytea 2 B>"
    assert format_value(bytearray(5_000)) == "<bytea 5.0 KB>"
    assert format_value(memoryview(b"x" * 12_000_000)) == "<bytea 12.0 MB>"


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1_000, "1.0 KB"),
        (1_250, "1.2 KB"),
        (99_940, "99.9 KB"),
        (123_456_789, "123 MB"),
        (999_999, "1.0 MB"),
        (3_400_000_000, "3.4 GB"),
    ],
)
def test_format_size(n: int, text: str) -> None:
    assert format_size(n) == text


def test_vectors_are_abbreviated() -> None:
    v = np.zeros(4096, dtype=np.float32)
    v[:2] = [0.12, -0.3]
    assert format_value(v) == "[0.12, -0.3, … 4096 dims]"
    assert format_value(np.array([0.5, 1.0, -2.25], dtype=np.float32)) == "[0.5, 1, -2.25]"
    assert format_value(np.array([1, 2, 3, 4], dtype=np.int64)) == "[1, 2, 3, 4]"
    assert format_value(np.arange(5)) == "[0, 1, … 5 dims]"
    assert format_value(np.array([], dtype=np.float32)) == "[]"
    assert format_value(np.array([True, False])) == "[true, false]"


def test_tensors_show_shape_and_dtype() -> None:
    t = np.full((4, 8, 8), 0.5, dtype=np.float16)
    assert format_value(t) == "[0.5, 0.5, … 4x8x8 float16]"
    assert format_value(np.ones((2, 2), dtype=np.uint8)) == "[1, 1, … 2x2 uint8]"


def test_long_vectors_cost_no_more_than_short_ones() -> None:
    text = format_value(np.random.default_rng(0).standard_normal(1_000_000).astype(np.float32))
    assert text.endswith("… 1000000 dims]")
    assert len(text) < 40


# --- tables -----------------------------------------------------------------------------------


def test_table_layout() -> None:
    text = format_table(
        ["prompt", "quality_score", "relevance"],
        [("a dog on a beach", 0.91, 0.5), ("cat", 0.875, 12.25)],
    )
    assert text.splitlines() == [
        "      prompt      | quality_score | relevance",
        "------------------+---------------+-----------",
        " a dog on a beach |          0.91 |       0.5",
        " cat              |         0.875 |     12.25",
        "(2 rows)",
    ]


def test_table_footer_and_empty_result() -> None:
    assert format_table(["n"], [(1,)]).splitlines()[-1] == "(1 row)"
    assert format_table(["id", "prompt"], []).splitlines() == [
        " id | prompt",
        "----+--------",
        "(0 rows)",
    ]


def test_table_has_no_trailing_spaces() -> None:
    text = format_table(["a", "long header"], [("x", None), ("a longer value", "y")])
    assert all(line == line.rstrip() for line in text.splitlines())


def test_null_and_numbers_stay_right_aligned() -> None:
    lines = format_table(["score"], [(None,), (0.5,), (12,)]).splitlines()
    assert lines[2:5] == ["  NULL", "   0.5", "    12"]


def test_booleans_and_text_left_aligned() -> None:
    lines = format_table(["ok", "name"], [(True, "a"), (False, "bbbb")]).splitlines()
    assert lines[2] == " true  | a"
    assert lines[3] == " false | bbbb"


def test_blob_and_vector_cells_in_a_table() -> None:
    emb = np.linspace(-1, 1, 4096).astype(np.float32)
    text = format_table(["output_video", "prompt_embedding"], [(_blob("video", 1_200_000), emb)])
    assert "<video 1.2 MB>" in text
    assert "… 4096 dims]" in text
    assert len(text.splitlines()[2]) < 60


def test_wide_characters_keep_columns_aligned() -> None:
    lines = format_table(["p", "n"], [("日本語", 1), ("abc", 22)]).splitlines()
    bars = {line.index("|") + sum(1 for ch in line[: line.index("|")] if ord(ch) > 0x2E80)
            for line in lines[:1] + lines[2:4]}
    assert len(bars) == 1  # the separator sits in the same terminal column on every row


def test_table_without_columns() -> None:
    assert format_table([], []) == "(0 rows)"


# --- splitting SQL ------------------------------------------------------------------------------


def test_split_statements_and_rest() -> None:
    stmts, rest = split_sql("select 1; select 'a;b' -- c;\n; select $$;$$; select")
    assert stmts == ["select 1", "select 'a;b' -- c;", "select $$;$$"]  # ';' in a comment is text
    assert rest == "select"


def test_split_ignores_empty_statements_and_comments() -> None:
    assert split_sql(";; -- only a comment\n") == ([], "")
    assert split_sql("/* x; y */ select 1;") == (["/* x; y */ select 1"], "")


def test_split_keeps_pgvector_operators() -> None:
    stmts, rest = split_sql("SELECT id FROM g ORDER BY e <=> $1 LIMIT 5;")
    assert stmts == ["SELECT id FROM g ORDER BY e <=> $1 LIMIT 5"]
    assert rest == ""


def test_open_string_needs_more_input() -> None:
    with pytest.raises(ValueError):
        split_sql("select 'still open;")
    with pytest.raises(ValueError):
        split_sql("select 1 /* open comment;")


def test_all_statements_takes_a_last_statement_without_semicolon() -> None:
    assert all_statements("create table t (a int); insert into t values (1)") == [
        "create table t (a int)",
        "insert into t values (1)",
    ]
    assert all_statements("select 'open") == ["select 'open"]  # the database reports the error
    assert all_statements("  ") == []
