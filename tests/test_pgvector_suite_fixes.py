"""What pgvector-python's own tests found, checked with the client that found it against a
real `reeldb serve` on 127.0.0.1: expression indexes (binary_quantize / halfvec casts) are
recorded in the catalog and dropped, queries by them answer exactly; ivfflat on an empty
table is created untrained and answers exactly until REINDEX; a Describe of a prepared
statement does not evaluate it with NULL parameters (pg8000 / asyncpg reflection); and
asyncpg connections, one per event loop as pgvector-python's asyncio tests open them, read
bit, avg(vector), sparsevec and vector[] as written. (Its TestSqlalchemyAsync::test_bit over
asyncpg fails on PostgreSQL 16 as well with SQLAlchemy 2.1, whose BIT type returns its own
BitString, never equal to asyncpg's; the other three asyncpg failures followed from it: the
failed test never disposed its engine, whose pooled connection stayed on a closed loop.)"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess

import numpy as np
import pytest

from served import served

psycopg = pytest.importorskip("psycopg")
asyncpg = pytest.importorskip("asyncpg")
sqlalchemy = pytest.importorskip("sqlalchemy")
pytest.importorskip("pgvector")
from pgvector import SparseVector, Vector  # noqa: E402
from pgvector.asyncpg import register_vector  # noqa: E402
from pgvector.sqlalchemy import HALFVEC, SPARSEVEC, VECTOR  # noqa: E402
from sqlalchemy import (  # noqa: E402
    ARRAY,
    Column,
    Index,
    Integer,
    MetaData,
    Table,
    create_engine,
    func,
    inspect,
)
from sqlalchemy.dialects.postgresql import BIT  # noqa: E402

ROWS = [(1, [1, -2, 3]), (2, [-1, -2, -3]), (3, [1, 2, 3]), (4, [-1, 2, -3])]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with served(tmp_path_factory, "pgv",
                "CREATE TABLE items (id INT PRIMARY KEY, embedding vector(3))",
                "INSERT INTO items VALUES " + ", ".join(f"({i}, '{v}')" for i, v in ROWS)) as srv:
        yield srv


def dsn(server) -> str:
    host, port = server.address
    return f"host={host} port={port} dbname=pgv user=tester"


def url(server, driver: str) -> str:
    host, port = server.address
    return f"postgresql+{driver}://tester@{host}:{port}/pgv"


def connect(server):
    conn = psycopg.connect(dsn(server), autocommit=True)
    notices: list[str] = []
    conn.add_notice_handler(lambda d: notices.append(d.message_primary))
    return conn, notices


def index_names(conn, table: str = "items") -> list[str]:
    return [r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public' "
                                       "AND tablename = %s ORDER BY indexname", (table,))]


def psql(server, command: str) -> str:
    exe = shutil.which("psql")
    if exe is None:
        pytest.skip("psql is not installed")
    host, port = server.address
    out = subprocess.run([exe, "-X", "-h", host, "-p", str(port), "-U", "tester", "-d", "pgv", "-c", command],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


def hamming_order(query: list[float]) -> list[int]:
    """Rows by Hamming distance of binary_quantize(embedding) to binary_quantize(query), then id."""
    q = np.array(query) > 0
    return [i for _, i in sorted((int(((np.array(v) > 0) != q).sum()), i) for i, v in ROWS)]


# -- 1. expression indexes ----------------------------------------------------------------------
def test_binary_quantize_index_is_in_the_catalog_answers_exactly_and_drops(server) -> None:
    conn, notices = connect(server)
    with conn:
        conn.execute("CREATE INDEX items_bq ON items USING hnsw "
                     "((binary_quantize(embedding)::bit(3)) bit_hamming_ops)")
        assert any("recorded, not built" in n for n in notices)
        assert "items_bq" in index_names(conn)
        assert conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'items_bq'").fetchone()[0] == (
            "CREATE INDEX items_bq ON public.items USING hnsw (((binary_quantize(embedding))::bit(3)) "
            "bit_hamming_ops)")
        # PostgreSQL's catalog for an expression key: indkey 0, indexprs, the column named and typed by it
        row = conn.execute("SELECT i.indkey[0], i.indexprs IS NOT NULL, pg_get_expr(i.indexprs, i.indrelid), "
                           "a.attname, format_type(a.atttypid, a.atttypmod), "
                           "pg_get_indexdef(i.indexrelid, 1, true), pg_get_indexdef(i.indexrelid, 1, false) "
                           "FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indexrelid "
                           "WHERE i.indexrelid = 'items_bq'::regclass").fetchone()
        assert row == (0, True, "(binary_quantize(embedding))::bit(3)", "binary_quantize", "bit(3)",
                       "(binary_quantize(embedding)::bit(3))", "((binary_quantize(embedding))::bit(3))")
        assert '"items_bq" hnsw ((binary_quantize(embedding)::bit(3)) bit_hamming_ops)' in psql(server, r"\d items")
        for query in ([1, -1, 1], [-3, 2, -1]):
            got = conn.execute("SELECT id FROM items ORDER BY binary_quantize(embedding)::bit(3) <~> "
                               "binary_quantize(%s::vector(3)), id", (str(query),)).fetchall()
            assert [r[0] for r in got] == hamming_order(query)
        conn.execute("DROP INDEX items_bq")
        assert "items_bq" not in index_names(conn)
        with pytest.raises(psycopg.errors.UndefinedObject, match='index "items_bq" does not exist'):
            conn.execute("DROP INDEX items_bq")


def test_halfvec_cast_index_from_sqlalchemy_is_reflected_and_dropped(server) -> None:
    engine = create_engine(url(server, "psycopg"))
    table = Table("items", MetaData(), Column("id", Integer, primary_key=True), Column("embedding", VECTOR(3)))
    index = Index("items_half", func.cast(table.c.embedding, HALFVEC(3)).label("embedding"),
                  postgresql_using="hnsw", postgresql_ops={"embedding": "halfvec_l2_ops"})
    try:
        index.create(engine)
        [got] = [ix for ix in inspect(engine).get_indexes("items") if ix["name"] == "items_half"]
        assert got["expressions"] == ["(embedding::halfvec(3))"]  # PostgreSQL 16's pretty pg_get_indexdef
        assert got["dialect_options"]["postgresql_using"] == "hnsw"
        index.drop(engine)
        assert not [ix for ix in inspect(engine).get_indexes("items") if ix["name"] == "items_half"]
    finally:
        engine.dispose()


@pytest.mark.parametrize(("sql", "error", "message"), [
    ("CREATE INDEX bad ON items USING hnsw ((embedding::vector(4)) vector_l2_ops)", "DataException",
     "expected 4 dimensions, not 3"),
    ("CREATE INDEX bad ON items USING hnsw ((embedding::halfvec(3)) vector_l2_ops)", "DatatypeMismatch",
     'operator class "vector_l2_ops" does not accept data type halfvec'),
    ("CREATE INDEX bad ON items USING ivfflat ((binary_quantize(embedding)::bit(3)) bit_jaccard_ops)",
     "UndefinedObject", 'operator class "bit_jaccard_ops" does not exist for access method "ivfflat"'),
    ("CREATE INDEX bad ON items USING hnsw ((abs(id)) vector_l2_ops)", "FeatureNotSupported", "not abs()"),
    ("CREATE INDEX bad ON items USING hnsw ((nope::halfvec(3)) halfvec_l2_ops)", "UndefinedColumn",
     'column "nope" does not exist'),
    ("CREATE INDEX bad ON items USING hnsw ((binary_quantize(embedding)::vector(3)) vector_l2_ops)",
     "CannotCoerce", "cannot cast type bit to vector"),
])
def test_expression_indexes_postgresql_refuses_are_refused_and_nothing_recorded(server, sql, error,
                                                                                 message) -> None:
    conn, _ = connect(server)
    with conn:
        before = index_names(conn)
        with pytest.raises(getattr(psycopg.errors, error), match=message.replace("(", r"\(").replace(")", r"\)")):
            conn.execute(sql)
        assert index_names(conn) == before


def test_a_cast_that_changes_nothing_indexes_the_column(server) -> None:
    conn, notices = connect(server)
    with conn:
        conn.execute("CREATE INDEX items_same ON items USING hnsw ((embedding::vector(3)) vector_l2_ops)")
        try:
            assert not any("recorded, not built" in n for n in notices)
            # PostgreSQL drops the no-op cast: an ordinary index on column 2, built and used
            assert conn.execute("SELECT indkey[0], indexprs FROM pg_index "
                                "WHERE indexrelid = 'items_same'::regclass").fetchone() == (2, None)
            plan = "\n".join(r[0] for r in conn.execute(
                "EXPLAIN SELECT id FROM items ORDER BY embedding <-> '[1,1,1]' LIMIT 1"))
            assert "index items_same" in plan
        finally:
            conn.execute("DROP INDEX items_same")


def test_index_definitions_read_back_as_postgresql_prints_them(server) -> None:
    """pg_indexes, reloptions and SQLAlchemy's reflection, each compared with what
    PostgreSQL 16 + pgvector answered for the same statements: the options given, in their
    order; vector_l2_ops, ivfflat's default operator class for vector, left out and implied."""
    conn, _ = connect(server)
    engine = create_engine(url(server, "psycopg"))
    with conn:
        conn.execute("CREATE TABLE defs (id INT, e vector(3))")
        try:
            for sql in ("CREATE INDEX defs_i ON defs USING ivfflat (e) WITH (lists = 1)",
                        "CREATE INDEX defs_k ON defs USING ivfflat (e)",
                        "CREATE INDEX defs_m ON defs USING hnsw (e vector_l2_ops) WITH (ef_construction = 32, m = 8)",
                        "CREATE INDEX defs_c ON defs USING ivfflat (e vector_cosine_ops) WITH (lists = 2)"):
                conn.execute(sql)
            got = dict(conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'defs' "
                                    "AND schemaname = 'public'").fetchall())
            assert got == {
                "defs_i": "CREATE INDEX defs_i ON public.defs USING ivfflat (e) WITH (lists='1')",
                "defs_k": "CREATE INDEX defs_k ON public.defs USING ivfflat (e)",
                "defs_m": "CREATE INDEX defs_m ON public.defs USING hnsw (e vector_l2_ops) "
                          "WITH (ef_construction='32', m='8')",
                "defs_c": "CREATE INDEX defs_c ON public.defs USING ivfflat (e vector_cosine_ops) WITH (lists='2')"}
            got = dict(conn.execute("SELECT relname, reloptions FROM pg_class WHERE relnamespace = 2200 "
                                    "AND relname IN ('defs_i', 'defs_k', 'defs_m', 'defs_c')").fetchall())
            assert got == {"defs_i": ["lists=1"], "defs_k": None, "defs_m": ["ef_construction=32", "m=8"],
                           "defs_c": ["lists=2"]}
            reflected = {ix["name"]: ix["dialect_options"] for ix in inspect(engine).get_indexes("defs")}
            assert reflected == {
                "defs_c": {"postgresql_ops": {"e": "vector_cosine_ops"}, "postgresql_with": {"lists": "2"},
                           "postgresql_using": "ivfflat", "postgresql_include": []},
                "defs_i": {"postgresql_with": {"lists": "1"}, "postgresql_using": "ivfflat",
                           "postgresql_include": []},
                "defs_k": {"postgresql_using": "ivfflat", "postgresql_include": []},
                "defs_m": {"postgresql_ops": {"e": "vector_l2_ops"},
                           "postgresql_with": {"ef_construction": "32", "m": "8"}, "postgresql_using": "hnsw",
                           "postgresql_include": []}}
        finally:
            engine.dispose()
            conn.execute("DROP TABLE defs")


# -- 2. ivfflat on an empty or small table -------------------------------------------------------
def test_ivfflat_on_an_empty_table_answers_exactly_until_reindex_trains_it(server) -> None:
    engine = create_engine(url(server, "psycopg"))
    meta = MetaData()
    table = Table("core_items", meta, Column("id", Integer, primary_key=True), Column("embedding", VECTOR(3)),
                  Column("half_embedding", HALFVEC(3)), Column("binary_embedding", BIT(3)),
                  Column("sparse_embedding", SPARSEVEC(3)), Column("embeddings", ARRAY(VECTOR(3))))
    try:
        meta.drop_all(engine)
        meta.create_all(engine)
        # pgvector-python's test_core: lists = 1 over no rows
        Index("core_ivfflat", table.c.embedding, postgresql_using="ivfflat", postgresql_with={"lists": 1},
              postgresql_ops={"embedding": "vector_l2_ops"}).create(engine)
        Index("core_hnsw", table.c.embedding, postgresql_using="hnsw", postgresql_with={"m": 16, "ef_construction": 64},
              postgresql_ops={"embedding": "vector_l2_ops"}).create(engine)
        conn, notices = connect(server)
        with conn:
            conn.execute("DROP INDEX core_hnsw")
            conn.execute("CREATE INDEX core_ivf3 ON core_items USING ivfflat (embedding vector_l2_ops) "
                         "WITH (lists = 3)")
            assert any("ivfflat index created with little data" in n for n in notices)
            assert index_names(conn, "core_items") == ["core_items_pkey", "core_ivf3", "core_ivfflat"]
            conn.execute("INSERT INTO core_items (id, embedding) VALUES (1, '[1,1,1]'), (2, '[5,5,5]')")
            conn.execute("SET ivfflat.probes = 1")
            # untrained: exact, where pgvector's lists trained on nothing find no rows
            got = conn.execute("SELECT id FROM core_items ORDER BY embedding <-> '[4,4,4]' LIMIT 1").fetchall()
            assert got == [(2,)]
            conn.execute("INSERT INTO core_items (id, embedding) SELECT g, ('[' || g || ',0,0]')::vector "
                         "FROM generate_series(3, 40) g")
            conn.execute("DROP INDEX core_ivfflat")
            conn.execute("REINDEX INDEX core_ivf3")  # 40 rows for 3 lists: trained now
            plan = "\n".join(r[0] for r in conn.execute(
                "EXPLAIN SELECT id FROM core_items ORDER BY embedding <-> '[4,4,4]' LIMIT 1"))
            assert "index core_ivf3 (ivfflat" in plan
    finally:
        meta.drop_all(engine)
        engine.dispose()


# -- 4. Describe of a prepared statement does not run it on NULLs ---------------------------------
def test_describe_does_not_evaluate_json_build_object_on_null_parameters(server) -> None:
    """pg8000 (and asyncpg) Describe a statement before binding it; reeldb ran it with NULL
    for every parameter to learn its columns, and json_build_object refused the NULL key
    (22000), which failed SQLAlchemy's column reflection over pg8000."""
    host, port = server.address

    async def go():
        conn = await asyncpg.connect(host=host, port=port, user="tester", database="pgv")
        try:
            stmt = await conn.prepare("SELECT json_build_object($1::varchar, $2::int) AS j, "
                                      "json_build_object($1::varchar, a.attnum = $2::int) AS k "
                                      "FROM pg_attribute a WHERE a.attrelid = 'items'::regclass ORDER BY a.attnum")
            assert [a.name for a in stmt.get_attributes()] == ["j", "k"]
            return await stmt.fetch("key", 1)
        finally:
            await conn.close()

    rows = asyncio.run(go())
    assert [(json.loads(r["j"]), json.loads(r["k"])) for r in rows] == [({"key": 1}, {"key": True}),
                                                                        ({"key": 1}, {"key": False})]


def test_generate_subscripts_of_an_int2vector_counts_from_zero(server) -> None:
    conn, _ = connect(server)
    with conn:
        got = conn.execute("SELECT generate_subscripts(indkey, 1), unnest(indkey) FROM pg_index "
                           "WHERE indexrelid = 'items_pkey'::regclass").fetchall()
        assert got == [(0, 1)]  # as PostgreSQL numbers int2vector's elements
        assert conn.execute("SELECT generate_subscripts(ARRAY[7, 8], 1)").fetchall() == [(1,), (2,)]


# -- 3. SQLAlchemy's asyncio tests over asyncpg: the flows, one event loop each -------------------
def test_asyncpg_on_a_new_event_loop_each_flow(server) -> None:
    """The same flows with asyncpg alone, a connection per event loop as each of
    pgvector-python's async tests opens: bit values come back as asyncpg's BitString,
    avg(vector), sparsevec and vector[] as written."""
    host, port = server.address
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS loop_items")
        conn.execute("CREATE TABLE loop_items (id INT PRIMARY KEY, embedding vector(3), b bit(3), "
                     "s sparsevec(3), vs vector(3)[])")

    async def flow(sql: str, *args):
        conn = await asyncpg.connect(host=host, port=port, user="tester", database="pgv")
        await register_vector(conn)
        try:
            async with conn.transaction():
                return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    asyncio.run(flow("INSERT INTO loop_items (id, embedding, b, s, vs) VALUES "
                     "(1, '[1,2,3]', $1, '{1:1,2:2,3:3}/3', '{\"[1,2,3]\",\"[4,5,6]\"}'), (2, '[4,5,6]', NULL, NULL, NULL)",
                     asyncpg.BitString("101")))
    assert asyncio.run(flow("SELECT b FROM loop_items WHERE id = 1"))[0]["b"] == asyncpg.BitString("101")
    assert asyncio.run(flow("SELECT avg(embedding) AS a FROM loop_items"))[0]["a"] == Vector([2.5, 3.5, 4.5])
    assert asyncio.run(flow("SELECT s FROM loop_items WHERE id = 1"))[0]["s"] == SparseVector([1, 2, 3])
    assert asyncio.run(flow("SELECT vs FROM loop_items WHERE id = 1"))[0]["vs"] == [Vector([1, 2, 3]),
                                                                                   Vector([4, 5, 6])]


def test_indexes_with_nothing_built_pass_check_and_vacuum(tmp_path) -> None:
    """An expression index and an untrained ivfflat index name no index object: `reeldb
    check` and VACUUM look for none."""
    import reeldb
    from reeldb.catalog.check import check

    db = reeldb.connect(tmp_path / "db")
    try:
        db.execute("CREATE TABLE t (id INT, e vector(3))")
        db.execute("INSERT INTO t VALUES (1, '[1,2,3]')")
        db.execute("CREATE INDEX t_bq ON t USING hnsw ((binary_quantize(e)::bit(3)) bit_hamming_ops)")
        db.execute("CREATE INDEX t_iv ON t USING ivfflat (e vector_l2_ops) WITH (lists = 4)")
        assert [(ix.name, ix.key) for ix in db.catalog.snapshot(db._session.head())["t"].indexes] == [
            ("t_bq", ""), ("t_iv", "")]
        db.execute("VACUUM")
        report = check(db.catalog)
        assert report.ok, report.problems
        assert db.execute("SELECT id FROM t ORDER BY e <-> '[1,2,2]' LIMIT 1").fetchall() == [(1,)]
    finally:
        db.close()
