"""The type registry (reeldb.types): one entry per pg_type row, text and binary codecs that
round-trip, names and aliases, register()'s checks, and PEP 249's type objects derived from
it."""

from __future__ import annotations

import datetime as dt
import decimal
import struct
import uuid
from typing import Any

import numpy as np
import pytest

import reeldb
from reeldb import dbapi, errors
from reeldb import types as registry
from reeldb.format.arrays import jsonb_text_of
from reeldb.format.ranges import Multirange, MultirangeParameter, Range, RangeParameter
from reeldb.types import TypeInfo, TypeRegistry

# A value of each type, as a result column hands it to the wire encoder (json and jsonb: their text)
SAMPLES: dict[str, Any] = {
    "bool": True, "bytea": b"\x00\xffab", "char": "r", "int8": -(2**40), "int2": -7, "int4": 123456,
    "text": "héllo, wörld", "oid": 4_000_000_000, "json": '{"b": [1, 2.50], "a": null}', "float4": 0.5,
    "float8": 1.5e300, "varchar": "a b", "date": dt.date(2026, 12, 7), "time": dt.time(1, 2, 3, 4),
    "timestamp": dt.datetime(2026, 12, 7, 1, 2, 3, 456789),
    "timestamptz": dt.datetime(2026, 12, 7, 1, 2, 3, 456789, tzinfo=dt.timezone.utc),
    "interval": dt.timedelta(days=2, seconds=5, microseconds=7), "numeric": decimal.Decimal("-12345.6789"),
    "bit": "101", "varbit": "1", "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "jsonb": '{"a": null, "b": [1, 2.50]}', "int2vector": [1, 2],
    "vector": np.array([1.5, -2], np.float32), "halfvec": np.array([0.5, 2], np.float16),
    "sparsevec": np.array([0, 1.5, 0], np.float32), "citext": "MiXed", "hstore": {"a": "1", "b": None},
    "record": {"f1": 1, "f2": "a b", "f3": None},
    "name": "pg_class", "bpchar": "x", "unknown": "u",
    "regproc": "now", "regclass": "pg_class", "regtype": "integer", "oidvector": [1, 2],
    "image": b"\x89PNG", "video": b"\x00", "tensor": b"\x01",
    "timetz": dt.time(1, 2, 3, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
    "int4range": Range(1, 5), "int8range": Range(None, 2**40, "(]"), "numrange": Range(decimal.Decimal("1.5"), None),
    "daterange": Range(dt.date(2026, 1, 1), dt.date(2026, 2, 1)),
    "tsrange": Range(dt.datetime(2026, 1, 1, 1, 2, 3), None, "()"),
    "tstzrange": Range(empty=True),
    "int4multirange": Multirange([Range(1, 5), Range(7, 9)]), "int8multirange": Multirange(),
    "nummultirange": Multirange([Range(None, decimal.Decimal("1.5"))]),
    "datemultirange": Multirange([Range(dt.date(2026, 1, 1), None)]),
    "tsmultirange": Multirange([Range(dt.datetime(2026, 1, 1, 1, 2, 3), None, "()")]),
    "tstzmultirange": Multirange([Range(None, None, "()")]),
}
# jsonb[] and json[] elements arrive as their JSON text, as json and jsonb values do (server/types.py)
ARRAY_SAMPLES: dict[str, list[Any]] = {"_jsonb": ['{"k": [1, 2.50], "a": null}', None],
                                       "_json": ['{"k":  1}', None]}
# what binary input makes of a value whose binary form it reads as text
BINARY_AS_TEXT = {"hstore": '"a"=>"1", "b"=>NULL'}
# types reeldb reads in binary but never sends: (PostgreSQL's binary value, what it binds)
RECV_ONLY = {"unknown": (b"abc", "abc"),
             "timetz": (struct.pack("!qi", 3_723_000_000, -19_800), "01:02:03+05:30")}
# types with no codec of their own: their values show as str() and bind as their text
NO_CODECS = {"regproc", "oidvector", "regclass", "image", "video", "tensor"}


def _sample(info: TypeInfo) -> Any:
    if info.element:
        if info.name in ARRAY_SAMPLES:
            return ARRAY_SAMPLES[info.name]
        return [_sample(registry.by_oid(info.element)), None]
    return SAMPLES[info.name]


def _comparable(v: Any) -> Any:
    if isinstance(v, RangeParameter):  # a binary range read: its value
        return v.value
    if isinstance(v, MultirangeParameter | Multirange):  # a binary multirange read: its ranges
        return ("multirange", list(v.value if isinstance(v, MultirangeParameter) else v))
    if isinstance(v, np.ndarray):
        return ("array", str(v.dtype), v.tolist())
    if isinstance(v, list):
        return [_comparable(x) for x in v]
    return v


def _text_out(info: TypeInfo) -> Any:
    return info.text_out or registry.text_out


def _send(info: TypeInfo, v: Any) -> bytes:
    return registry.send_of(info.oid)(v, registry.UTF8)


def _recv(info: TypeInfo, b: bytes) -> Any:
    return registry.binary_in(b, info.oid, registry.UTF8)


def test_every_pg_type_row_has_one_entry(tmp_path) -> None:
    db = reeldb.connect(tmp_path / "db")
    query = ("SELECT oid, typname, typlen, typcategory, typarray, typelem, typnamespace "
             "FROM pg_catalog.pg_type WHERE typtype IN ('b', 'r', 'm')")  # base, range, multirange types
    before = db.execute(query).fetchall()
    assert {r[0] for r in before} == {t.oid for t in registry.TYPES if t.extension is None}
    db.execute("CREATE EXTENSION citext")
    db.execute("CREATE EXTENSION hstore")
    rows = db.execute(query).fetchall()
    assert len(rows) == len({r[0] for r in rows}) == len(registry.TYPES)
    for oid, name, length, category, array, element, namespace in rows:
        info = registry.by_oid(oid)
        assert info is not None, name
        assert (info.name, info.length, info.category, info.array, info.element, info.namespace) == (
            name, length, category, array, element, namespace)
        assert registry.by_name(name) is info
    assert {o for oids in registry.EXTENSION_TYPES.values() for o in oids} == {
        r[0] for r in rows} - {r[0] for r in before}


def test_built_in_entries_are_postgresqls(postgres: str) -> None:
    """Each built-in entry's OID, name, length, category and array type as PostgreSQL 16's."""
    import psycopg

    with psycopg.connect(postgres) as pg:
        rows = {r[0]: r[1:] for r in pg.execute(
            "SELECT oid::int, typname::text, typlen, typcategory::text, typarray::int, typelem::int, "
            "format_type(oid, NULL) FROM pg_type").fetchall()}
    for info in registry.TYPES:
        if info.namespace != registry.PG_CATALOG_NS:
            continue
        name, length, category, array, element, sql_name = rows[info.oid]
        assert (info.name, info.length, info.category, info.array) == (name, length, category, array)
        assert info.element in (element, 0)  # int2vector / oidvector: no element here, arrays of them in reeldb
        if not info.element:
            assert info.display_name == sql_name.replace('"char"', "char"), info.name
    with psycopg.connect(postgres) as pg:
        for info in registry.TYPES:
            for alias in info.aliases:
                assert pg.execute("SELECT %s::regtype::oid::int", [alias]).fetchone()[0] == info.oid, alias


def test_text_codecs_round_trip() -> None:
    """PostgreSQL's text of a sample, read back by the entry's text input: the same value; a
    type whose text the SQL layer reads (text_in None) binds the text itself."""
    for info in registry.TYPES:
        if info.name in NO_CODECS:
            assert info.text_in is None and info.send is None and info.recv is None, info.name
        if info.element and registry.by_oid(info.element).category == "A":  # arrays of int2vector: no text form
            continue
        value = _sample(info)
        text = _text_out(info)(value)
        assert isinstance(text, str), info.name
        got = registry.text_in(text, info.oid)
        typed = (RangeParameter, MultirangeParameter)
        if isinstance(got, typed) or isinstance(got, list) and isinstance(got[0], typed):
            continue  # a range's text is read by the SQL layer, its bounds by their subtypes' casts
        if info.text_in is None:
            assert got == text, info.name
        elif info.element and registry.by_oid(info.element).text_in is None:
            assert got == [_element_text(registry.by_oid(info.element), value[0]), None], info.name
        else:
            assert _comparable(got) == _comparable(value), info.name
            assert _text_out(info)(got) == text, info.name


def _element_text(element: TypeInfo, x: Any) -> str:
    """An array element's text, as the array's text output writes it."""
    if element.name == "jsonb":  # jsonb[] elements are JSON text, printed as jsonb prints it
        return jsonb_text_of(x)
    return _text_out(element)(x)


def test_text_output_of_samples_is_postgresqls(tmp_path) -> None:
    """Each scalar sample's text, as a reeldb column of its type stores and shows it."""
    db = reeldb.connect(tmp_path / "db")
    db.execute("CREATE EXTENSION citext")
    db.execute("CREATE EXTENSION hstore")
    columns = {"bool": "boolean", "int2": "smallint", "int4": "int", "int8": "bigint", "float4": "real",
               "float8": "float8", "numeric": "numeric(9,4)", "text": "text", "varchar": "varchar(5)",
               "bytea": "bytea", "date": "date", "time": "time", "timestamp": "timestamp",
               "timestamptz": "timestamptz", "uuid": "uuid", "bit": "bit(3)",
               "varbit": "bit varying", "jsonb": "jsonb", "vector": "vector(2)", "halfvec": "halfvec(2)",
               "sparsevec": "sparsevec(3)", "citext": "citext", "hstore": "hstore"}
    db.execute("CREATE TABLE samples (" + ", ".join(f"{name} {sql}" for name, sql in columns.items()) + ")")
    texts = [_text_out(registry.by_name(name))(SAMPLES[name]) for name in columns]
    db.execute(f"INSERT INTO samples VALUES ({', '.join(['%s'] * len(columns))})", texts)
    select = ", ".join(f"{name}::text" if name == "jsonb" else name for name in columns)  # jsonb: its text
    row = db.execute(f"SELECT {select} FROM samples").fetchone()
    for name, text, value in zip(columns, texts, row, strict=True):
        assert _text_out(registry.by_name(name))(value) == text, name
    interval = registry.by_name("interval")  # no interval columns yet: a value computed from the text
    text = interval.text_out(SAMPLES["interval"]) if interval.text_out else registry.text_out(SAMPLES["interval"])
    assert registry.text_out(db.execute("SELECT CAST(%s AS interval)", [text]).fetchone()[0]) == text


def test_binary_codecs_round_trip() -> None:
    """send then recv gives back the sample (an array: each element as its type's codec
    gives it back); a type without a binary form is refused (0A000) both ways."""
    for info in registry.TYPES:
        if info.name in RECV_ONLY:
            data, bound = RECV_ONLY[info.name]
            assert _recv(info, data) == bound
            if info.send is not None:  # timetz: results are sent from their text
                assert _send(info, bound) == data
            continue
        if info.send is None:
            with pytest.raises(errors.FeatureNotSupported, match=f"OID {info.oid}"):
                registry.send_of(info.oid)
            if info.recv is None:
                with pytest.raises(errors.FeatureNotSupported, match=f"OID {info.oid}"):
                    registry.binary_in(b"x", info.oid, registry.UTF8)
            continue
        value = _sample(info)
        if info.element:
            element = registry.by_oid(info.element)
            if element.send is None:
                with pytest.raises(errors.FeatureNotSupported, match=f"arrays of type OID {element.oid}"):
                    _send(info, value)
                continue
            data = _send(info, value)
            assert struct.unpack_from("!iii", data) == (1, 1, element.oid)
            expected = [None if x is None else _recv(element, _binary_element(element, x)) for x in value]
        else:
            data = _send(info, value)
            expected = BINARY_AS_TEXT.get(info.name, value)
        assert info.recv is not None, info.name
        assert _comparable(_recv(info, data)) == _comparable(expected), info.name


def _binary_element(element: TypeInfo, x: Any) -> bytes:
    """An array element's binary form, as the array's send makes it."""
    if element.name == "jsonb":  # jsonb[] elements are JSON text, sent as jsonb prints it
        return b"\x01" + registry.UTF8.encode(jsonb_text_of(x))
    if element.name in ("vector", "halfvec", "sparsevec"):
        x = np.asarray(x, dtype=np.float32)
    return _send(element, x)


def test_names_and_aliases_resolve() -> None:
    int4 = registry.by_oid(registry.INT4)
    for name in ("int4", "integer", "int", "INT", "pg_catalog.int4", " Integer "):
        assert registry.by_name(name) is int4
    assert registry.by_kind("int32") is int4
    assert registry.by_duck("INTEGER") is int4
    assert registry.by_kind("int32_array").oid == int4.array == registry.ARRAY_OF[int4.oid]
    assert registry.by_duck("INTEGER[]").oid == int4.array
    assert registry.by_name("timestamp with time zone").oid == registry.TIMESTAMPTZ
    assert registry.by_name("char").oid == registry.CHAR and registry.by_name("character").oid == registry.BPCHAR
    assert registry.by_name("no_such_type") is None and registry.by_oid(1) is None
    for info in registry.TYPES:  # every name of every entry leads back to it
        assert all(registry.by_name(n) is info for n in info.names())
        assert all(registry.by_duck(d) is info for d in info.duck_names())
        assert info.kind is None or registry.by_kind(info.kind) is info


def test_aliases_agree_with_column_types() -> None:
    """A column declared with any of an entry's names (as PostgreSQL's grammar hands the
    name over) has the entry's kind (format/types.py)."""
    import pglast

    from reeldb.format.types import column_type

    for info in registry.TYPES:
        if info.kind is None or info.element or info.kind in ("vector", "halfvec", "sparsevec", "tensor", "bit"):
            continue
        for name in info.names():
            stmt = pglast.parse_sql(f"CREATE TABLE t (c {name})")[0].stmt
            parsed = stmt.tableElts[0].typeName.names[-1].sval
            assert column_type(parsed).kind == info.kind, name


def test_register_makes_a_type_visible_and_refuses_clashes() -> None:
    types = TypeRegistry()
    base = types.register(TypeInfo(name="colour", oid=17001, aliases=("color",), kind="colour", array=17002,
                                   duck_also=("COLOUR",), pep249="STRING", namespace=registry.PUBLIC_NS))
    array = types.register(registry.array_info(base))
    assert types.by_oid(17001) is base and types.by_name("Color") is base and types.by_duck("colour") is base
    assert types.by_kind("colour") is base and types.by_oid(17002) is array and array.name == "_colour"
    assert types.array_of == {17001: 17002} and types.by_duck("COLOUR[]") is array
    clashes = [TypeInfo(name="other", oid=17001), TypeInfo(name="color", oid=17003),
               TypeInfo(name="other", oid=17003, duck_also=("Colour",)),
               TypeInfo(name="other", oid=17003, kind="colour"),
               TypeInfo(name="other", oid=17003, pep249="TEXT"),
               TypeInfo(name="_other", oid=17003, element=17999)]
    for clash in clashes:
        with pytest.raises(errors.Error) as e:
            types.register(clash)
        assert e.value.sqlstate in ("42710", "22023", "42704")
        assert len(types.types) == 2 and 17003 not in types.oids and "other" not in types.names

    count = len(registry.TYPES)  # the process's registry refuses the same way, unchanged
    for clash in (TypeInfo(name="int4", oid=17005), TypeInfo(name="x", oid=registry.INT4),
                  TypeInfo(name="x", oid=17005, aliases=("integer",)),
                  TypeInfo(name="x", oid=17005, duck_also=("TINYINT",))):
        with pytest.raises(errors.DuplicateObject):
            registry.register(clash)
    assert len(registry.TYPES) == count and 17005 not in registry.BY_OID and "x" not in registry.BY_NAME


def test_dbapi_type_objects_derive_from_the_registry(tmp_path) -> None:
    assert [obj.name for obj in dbapi.TYPE_OBJECTS.values()] == list(registry.PEP249_GROUPS)
    assert dbapi.STRING is dbapi.TYPE_OBJECTS["STRING"] and reeldb.NUMBER is dbapi.TYPE_OBJECTS["NUMBER"]
    for info in registry.TYPES:  # each entry's names, as type codes, are in its group and no other
        for code in (*info.duck_names(), info.name.upper()):
            groups = [obj.name for obj in dbapi.TYPE_OBJECTS.values() if code == obj]
            assert groups == ([info.pep249] if info.pep249 else []), code
    db = reeldb.connect(tmp_path / "db")
    db.execute("CREATE TABLE t (id INT, doc JSONB)")
    db.execute("INSERT INTO t VALUES (1, '{}')")
    codes = {d[0]: d[1] for d in db.execute("SELECT _rowid, id, doc, _rowid + 1 AS later FROM t").description}
    assert codes["_rowid"] == reeldb.ROWID and codes["_rowid"] == reeldb.NUMBER and codes["_rowid"] == "BIGINT"
    assert codes["id"] != reeldb.ROWID and codes["later"] != reeldb.ROWID and codes["later"] == reeldb.NUMBER
    assert codes["doc"] == reeldb.STRING


def test_pg_typeof_names_come_from_the_registry(tmp_path) -> None:
    db = reeldb.connect(tmp_path / "db")
    got = db.execute("SELECT pg_typeof(1 + 1), pg_typeof(now() - now()), pg_typeof(ARRAY[1.5::float8])").fetchone()
    assert [str(x) for x in got] == [registry.by_name("int4").display_name, "interval", "double precision[]"]
    with pytest.raises(errors.FeatureNotSupported, match="stands for more than one"):
        registry.pg_type_name("TINYINT")
