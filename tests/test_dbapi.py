"""PEP 249's module globals: type objects that compare equal to cursor.description's type
codes, and the constructors."""

from __future__ import annotations

import datetime as dt

import reeldb


def test_type_objects_match_description_type_codes(tmp_path) -> None:
    db = reeldb.connect(tmp_path / "db")
    db.execute("CREATE TABLE t (i INT, b BIGINT, s SMALLINT, r REAL, d DOUBLE PRECISION, "
               "n NUMERIC(10, 2), ok BOOLEAN, txt TEXT, v VARCHAR(3), j JSONB, u UUID, raw BYTEA, "
               "day DATE, at TIMESTAMP, atz TIMESTAMPTZ, clock TIME, span INTERVAL, e VECTOR(3))")
    codes = {d[0]: d[1] for d in db.execute("SELECT * FROM t").description}
    kinds = {"NUMBER": reeldb.NUMBER, "STRING": reeldb.STRING, "BINARY": reeldb.BINARY,
             "DATETIME": reeldb.DATETIME, "ROWID": reeldb.ROWID}

    def kind(code: str) -> list[str]:
        return [name for name, obj in kinds.items() if code == obj]

    expected = {"i": ["NUMBER"], "b": ["NUMBER"], "s": ["NUMBER"], "r": ["NUMBER"], "d": ["NUMBER"],
                "n": ["NUMBER"], "ok": ["NUMBER"], "txt": ["STRING"], "v": ["STRING"], "j": ["STRING"],
                "u": ["STRING"], "raw": ["BINARY"], "day": ["DATETIME"], "at": ["DATETIME"],
                "atz": ["DATETIME"], "clock": ["DATETIME"], "span": ["DATETIME"], "e": []}
    assert {col: kind(code) for col, code in codes.items()} == expected
    assert codes["raw"] == "BYTEA"  # not the struct that says where a blob's bytes are
    assert reeldb.NUMBER != "VARCHAR" and reeldb.STRING != reeldb.NUMBER
    assert len({reeldb.NUMBER, reeldb.STRING, reeldb.NUMBER}) == 2  # hashable


def test_constructors() -> None:
    assert reeldb.Date(2026, 12, 7) == dt.date(2026, 12, 7)
    assert reeldb.Time(1, 2, 3) == dt.time(1, 2, 3)
    assert reeldb.Timestamp(2026, 12, 7, 1, 2, 3) == dt.datetime(2026, 12, 7, 1, 2, 3)
    assert reeldb.TimestampFromTicks(0) == dt.datetime.fromtimestamp(0).replace(microsecond=0)
    assert reeldb.DateFromTicks(0) == dt.date.fromtimestamp(0)
    assert reeldb.TimeFromTicks(0) == dt.datetime.fromtimestamp(0).time()
    assert reeldb.Binary(bytearray(b"\x00\x01")) == b"\x00\x01"
