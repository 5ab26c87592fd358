"""CREATE EXTENSION citext and hstore (issue 21: SQLAlchemy's test provisioning runs both),
through real clients against a real ``reeldb serve``: psycopg 3 (text and binary),
psycopg2, asyncpg (hstore's binary codec) and SQLAlchemy's HSTORE and CITEXT types.

The expected answers are PostgreSQL's: each was read from a PostgreSQL server with contrib's
citext 1.6 and hstore 1.8 (PostgreSQL 16's versions) in a database with LC_CTYPE C, as
reeldb's is."""

from __future__ import annotations

import asyncio

import pytest

import reeldb
from reeldb.server.server import BackgroundServer
from reeldb.storage import open_store

psycopg = pytest.importorskip("psycopg")

CITEXT_OID, HSTORE_OID = 16394, 16396


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from reeldb.server import users

    path = tmp_path_factory.mktemp("ext") / "db"
    db = reeldb.connect(path)
    db.execute("CREATE TABLE plain (id INT)")
    db.close()
    store = open_store(str(path), create=False)
    users.add_user(store, "writer", "w")
    users.add_user(store, "reader", "r", readonly=True)
    srv = BackgroundServer(str(path), port=0)
    with psycopg.connect(dsn(srv), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION citext")
        conn.execute("CREATE EXTENSION IF NOT EXISTS hstore")
        conn.execute("CREATE TABLE t (id INT, c CITEXT, h HSTORE)")
        conn.execute(r"""INSERT INTO t VALUES (1, 'Abc', 'a=>1, b=>NULL'), (2, 'abc', ''), (3, 'B', NULL),
                         (4, NULL, 'x=>y'), (5, 'b_c', '"k\"q"=>"v,w"')""")
    yield srv
    srv.stop()


def dsn(server, user: str = "writer", password: str = "w") -> str:
    host, port = server.address
    return f"host={host} port={port} dbname=db user={user} password={password} sslmode=disable"


def rows(server, sql: str, params=None, binary: bool = False) -> list[tuple]:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        return conn.cursor(binary=binary).execute(sql, params).fetchall()


# -- CREATE / DROP EXTENSION ------------------------------------------------------------------
def test_types_do_not_exist_before_create_extension(tmp_path) -> None:
    db = reeldb.connect(tmp_path / "db")
    for sql in ("SELECT 'a'::citext", "SELECT 'a=>1'::hstore", "CREATE TABLE x (c citext)", "CREATE TABLE x (h hstore)"):
        with pytest.raises(reeldb.ProgrammingError) as e:
            db.execute(sql)
        assert e.value.sqlstate == "42704", sql
    with pytest.raises(reeldb.ProgrammingError) as e:
        db.execute("SELECT akeys(NULL)")
    assert e.value.sqlstate == "42883"
    assert db.execute("SELECT count(*) FROM pg_type WHERE typname IN ('citext', 'hstore')").fetchone() == (0,)
    db.execute("CREATE EXTENSION hstore")  # one extension does not bring the other's type
    with pytest.raises(reeldb.ProgrammingError):
        db.execute("SELECT 'a'::citext")
    assert db.execute("SELECT typname FROM pg_type WHERE typname IN ('citext', 'hstore')").fetchall() == [("hstore",)]


def test_pg_extension_and_pg_type_list_them(server) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        got = conn.execute("SELECT extname, extversion FROM pg_extension ORDER BY extname").fetchall()
        assert ("citext", "1.6") in got and ("hstore", "1.8") in got and ("vector", "0.8.0") in got
        types = conn.execute("SELECT typname, oid, typarray FROM pg_type WHERE typname IN ('citext', 'hstore') "
                             "ORDER BY typname").fetchall()
        assert types == [("citext", CITEXT_OID, CITEXT_OID + 1), ("hstore", HSTORE_OID, HSTORE_OID + 1)]
        notices: list[str] = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary))
        assert conn.execute("CREATE EXTENSION IF NOT EXISTS citext").statusmessage == "CREATE EXTENSION"
        assert notices == ['extension "citext" already exists, skipping']
        with pytest.raises(psycopg.errors.DuplicateObject, match='extension "hstore" already exists'):
            conn.execute("CREATE EXTENSION hstore")


def test_read_only_login_cannot_create_or_drop_an_extension(tmp_path) -> None:
    from reeldb.server import users

    path = tmp_path / "db"
    reeldb.connect(path).close()
    users.add_user(open_store(str(path), create=False), "reader", "r", readonly=True)
    srv = BackgroundServer(str(path), port=0)
    try:
        with psycopg.connect(dsn(srv, "reader", "r"), autocommit=True) as conn:
            for sql in ("CREATE EXTENSION citext", "CREATE EXTENSION IF NOT EXISTS hstore", "DROP EXTENSION IF EXISTS citext"):
                with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                    conn.execute(sql)
            assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname IN ('citext', 'hstore')"
                                ).fetchone() == (0,)
            with pytest.raises(psycopg.errors.UndefinedObject):
                conn.execute("SELECT 'a'::citext")
    finally:
        srv.stop()


def test_drop_extension_refused_while_a_column_uses_it(server) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        conn.execute("CREATE TABLE dep (k citext)")
        conn.execute("INSERT INTO dep VALUES ('kept')")
        with pytest.raises(psycopg.errors.DependentObjectsStillExist, match="other objects depend on it .column . of table .* depends on type citext"):
            conn.execute("DROP EXTENSION citext")
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="CASCADE"):
            conn.execute("DROP EXTENSION citext CASCADE")
        assert conn.execute("SELECT k FROM dep").fetchall() == [("kept",)]
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'citext'").fetchone() == (1,)
        conn.execute("DROP TABLE dep")


def test_drop_and_create_again(tmp_path) -> None:
    db = reeldb.connect(tmp_path / "db")
    db.execute("CREATE EXTENSION citext")
    db.execute("CREATE TABLE x (c citext)")
    db.execute("DROP TABLE x")
    db.execute("DROP EXTENSION citext")
    assert db.execute("SELECT count(*) FROM pg_extension WHERE extname = 'citext'").fetchone() == (0,)
    with pytest.raises(reeldb.ProgrammingError):
        db.execute("SELECT 'a'::citext")
    with pytest.raises(reeldb.ProgrammingError) as e:
        db.execute("DROP EXTENSION citext")
    assert e.value.sqlstate == "42704"
    for sql in ("CREATE EXTENSION citext VERSION '1.4'", "CREATE EXTENSION citext SCHEMA elsewhere"):
        with pytest.raises(reeldb.NotSupportedError):
            db.execute(sql)
    db.execute("CREATE EXTENSION citext WITH SCHEMA public VERSION '1.6'")
    assert db.execute("SELECT 'A'::citext = 'a'").fetchone() == (True,)


# -- citext -------------------------------------------------------------------------------------
# (query, PostgreSQL's rows) over table t
CITEXT_ANSWERS = [
    ("SELECT id FROM t WHERE c = 'ABC' ORDER BY id", [(1,), (2,)]),
    ("SELECT id FROM t WHERE c = 'ABC'::text ORDER BY id", []),  # citext = text is text's =
    ("SELECT id FROM t WHERE lower(c) = 'abc' ORDER BY id", [(1,), (2,)]),
    ("SELECT id, c || 'X' = 'abcX' FROM t ORDER BY id", [(1, False), (2, True), (3, False), (4, None), (5, False)]),
    ("SELECT id FROM t WHERE c IN ('abc', 'b') ORDER BY id", [(1,), (2,), (3,)]),
    ("SELECT id FROM t WHERE c LIKE 'AB%' ORDER BY id", [(1,), (2,)]),
    ("SELECT id FROM t WHERE c NOT LIKE 'a%' ORDER BY id", [(3,), (5,)]),
    ("SELECT id FROM t WHERE c BETWEEN 'a' AND 'B' ORDER BY id", [(1,), (2,), (3,)]),
    ("SELECT id FROM t WHERE c > 'ABC' ORDER BY id", [(3,), (5,)]),
    ("SELECT id FROM t WHERE c <> 'abc' ORDER BY id", [(3,), (5,)]),
    ("SELECT upper(c), length(c), c::text = 'abc' FROM t ORDER BY id",
     [("ABC", 3, False), ("ABC", 3, True), ("B", 1, False), (None, None, None), ("B_C", 3, False)]),
    ("SELECT id FROM t WHERE c = coalesce(NULL, 'ABC') ORDER BY id", []),  # coalesce of unknowns is text
    ("SELECT count(DISTINCT c) FROM t", [(3,)]),
    ("SELECT t1.id, t2.id FROM t t1 JOIN t t2 ON t1.c = t2.c WHERE t1.id < t2.id", [(1, 2)]),
    ("SELECT 'ab'::citext < 'AC'::citext, 'a'::citext = 'A', 'x'::citext || 'Y'", [(True, True, "xY")]),
    ("SELECT lower(c), count(*) FROM t WHERE c IS NOT NULL GROUP BY c ORDER BY 1", [("abc", 2), ("b", 1), ("b_c", 1)]),
    ("SELECT c FROM t WHERE id IN (3, 5) ORDER BY c DESC", [("b_c",), ("B",)]),
    ("SELECT count(*) FROM (SELECT c FROM t UNION SELECT 'ABC') s", [(4,)]),  # citext and unknown: citext
    ("SELECT count(*) FROM (SELECT c FROM t UNION SELECT 'ABC'::text) s", [(6,)]),  # citext and text: text
    ("SELECT count(*) FROM (SELECT c FROM t UNION ALL SELECT 'ABC'::text) s WHERE c = 'abc'", [(1,)]),
    ("SELECT id, nullif(c, 'ABC') FROM t ORDER BY id", [(1, None), (2, None), (3, "B"), (4, None), (5, "b_c")]),
    ("SELECT id FROM t WHERE nullif(c, 'x') = 'ABC' ORDER BY id", [(1,), (2,)]),
    ("SELECT id, coalesce(c, 'q') || 'Z' = 'abcZ' FROM t ORDER BY id",
     [(1, False), (2, True), (3, False), (4, False), (5, False)]),
    ("SELECT id, CASE c WHEN 'abc' THEN 'y' ELSE 'n' END FROM t ORDER BY id",
     [(1, "y"), (2, "y"), (3, "n"), (4, "n"), (5, "n")]),
    ("SELECT id FROM t WHERE c IN (SELECT 'ABC'::text) ORDER BY id", []),
    ("SELECT count(*) FROM t WHERE c = ANY(ARRAY['ABC', 'B'])", [(1,)]),  # ARRAY of unknowns is text[]
    ("SELECT id FROM t WHERE exists (SELECT 1 FROM t t2 WHERE t2.c = t.c AND t2.id <> t.id) ORDER BY id",
     [(1,), (2,)]),
]


@pytest.mark.parametrize(("sql", "expected"), CITEXT_ANSWERS)
def test_citext_answers_as_postgresql(server, sql: str, expected: list) -> None:
    assert rows(server, sql) == expected
    if not any(isinstance(x, str) for r in expected for x in r):  # binary: ints and booleans
        assert rows(server, sql, binary=True) == expected


def test_citext_parameters_psycopg_text_and_binary(server) -> None:
    # an untyped (text-format) parameter becomes citext; psycopg's binary one is typed text
    # in both PostgreSQL and reeldb, unless the statement types it
    assert rows(server, "SELECT id FROM t WHERE c = %s ORDER BY id", ["ABC"]) == [(1,), (2,)]
    assert rows(server, "SELECT id FROM t WHERE c = %s ORDER BY id", ["ABC"], binary=True) == [(1,), (2,)]
    assert rows(server, "SELECT id FROM t WHERE c = %s::text ORDER BY id", ["ABC"]) == []
    assert rows(server, "SELECT id FROM t WHERE c LIKE %s ORDER BY id", ["AB%"]) == [(1,), (2,)]
    assert rows(server, "SELECT id FROM t WHERE c LIKE %s::text ORDER BY id", ["AB%"]) == [(1,), (2,)]


def test_citext_result_type_and_stored_case(server) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        cur = conn.execute("SELECT c, c::text, 'Q'::citext FROM t WHERE id = 1")
        assert [d.type_code for d in cur.description] == [CITEXT_OID, 25, CITEXT_OID]
        assert cur.fetchall() == [("Abc", "Abc", "Q")]
        cur = conn.execute("SELECT array_agg(c ORDER BY id) FROM t")  # citext[]: unknown to psycopg, so text
        assert cur.description[0].type_code == CITEXT_OID + 1 and cur.fetchall() == [("{Abc,abc,B,NULL,b_c}",)]
        cur = conn.cursor(binary=True).execute("SELECT c FROM t WHERE id = 1")
        assert cur.description[0].type_code == CITEXT_OID and cur.fetchall() == [(b"Abc",)]  # citext_send: text's


def test_citext_psycopg2(server) -> None:
    psycopg2 = pytest.importorskip("psycopg2")
    conn = psycopg2.connect(dsn(server))
    try:
        cur = conn.cursor()
        cur.execute("SELECT c FROM t WHERE c = %s ORDER BY id", ("aBc",))
        assert cur.description[0].type_code == CITEXT_OID
        assert cur.fetchall() == [("Abc",), ("abc",)]
        conn.rollback()
    finally:
        conn.close()


def test_citext_refusals_change_nothing(server) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        before = conn.execute("SELECT count(*) FROM t").fetchone()
        for sql, params in [("INSERT INTO t (id, c) VALUES (9, 'Émile')", None),
                            ("INSERT INTO t (id, c) VALUES (9, %s)", ["straße"]),
                            ("SELECT 'É'::citext", None),
                            ("SELECT id FROM t WHERE c < 'é'", None),
                            ("SELECT id FROM t WHERE c ~ 'b'", None),
                            ("SELECT strpos(c, 'B') FROM t", None),
                            ("SELECT max(c) FROM t", None),
                            ("SELECT greatest(c, 'b') FROM t", None),
                            ("CREATE TABLE k (c citext PRIMARY KEY)", None),
                            ("CREATE TABLE k (id int, c citext UNIQUE)", None)]:
            with pytest.raises(psycopg.errors.FeatureNotSupported):
                conn.execute(sql, params)
        assert conn.execute("SELECT count(*) FROM t").fetchone() == before
        assert conn.execute("SELECT count(*) FROM pg_class WHERE relname = 'k'").fetchone() == (0,)
        with pytest.raises(psycopg.errors.FeatureNotSupported):  # a computed value, checked as it runs
            conn.execute("SELECT (c || 'É')::citext FROM t")
        assert conn.execute("SELECT 'x日本'::citext = 'X日本'").fetchone() == (True,)  # letters without case: kept


# -- hstore -------------------------------------------------------------------------------------
HSTORE_ANSWERS = [
    ("SELECT h, h::text FROM t ORDER BY id",
     [('"a"=>"1", "b"=>NULL', '"a"=>"1", "b"=>NULL'), ("", ""), (None, None), ('"x"=>"y"', '"x"=>"y"'),
      ('"k\\"q"=>"v,w"', '"k\\"q"=>"v,w"')]),
    ("SELECT h -> 'a', h -> 'zz', h ? 'b', h ?& ARRAY['a','b'], h ?| ARRAY['q','x'] FROM t WHERE id IN (1, 2, 4) "
     "ORDER BY id",
     [("1", None, True, True, False), (None, None, False, False, False), (None, None, False, False, True)]),
    ("SELECT akeys(h), avals(h), hstore_to_array(h), hstore_to_matrix(h) FROM t WHERE id IN (1, 2) ORDER BY id",
     [("{a,b}", "{1,NULL}", "{a,1,b,NULL}", "{{a,1},{b,NULL}}"), ("{}", "{}", "{}", "{}")]),
    ("SELECT h @> 'b=>NULL', h <@ 'a=>1,b=>NULL,c=>3', h || 'z=>9', h - 'a'::text, h - ARRAY['a','x'], "
     "h - 'a=>1,b=>3'::hstore FROM t WHERE id = 1",
     [(True, True, '"a"=>"1", "b"=>NULL, "z"=>"9"', '"b"=>NULL', '"b"=>NULL', '"b"=>NULL')]),
    ("SELECT hstore('a','b'), hstore('a', NULL), hstore(ARRAY['b','a'], ARRAY['1',NULL]), "
     "hstore(ARRAY['a','a'], ARRAY['1','2'])",
     [('"a"=>"b"', '"a"=>NULL', '"a"=>NULL, "b"=>"1"', '"a"=>"1"')]),
    ("SELECT defined(h,'b'), exist(h,'b'), delete(h,'a'), delete(h, ARRAY['b']), slice(h, ARRAY['b','a','x']) "
     "FROM t WHERE id = 1",
     [(False, True, '"b"=>NULL', '"a"=>"1"', '"a"=>"1", "b"=>NULL')]),
    ("SELECT h -> ARRAY['a','x','b'], h['a'] FROM t WHERE id = 1", [("{1,NULL,NULL}", "1")]),
    ("SELECT 'a=>1, b=>2'::hstore = 'b=>2,a=>1', 'a=>1'::hstore <> 'a=>2', 'bb=>1,a=>2,ccc=>3,ab=>4,a=>5'::hstore",
     [(True, True, '"a"=>"2", "ab"=>"4", "bb"=>"1", "ccc"=>"3"')]),
    ("SELECT id, h - 'x=>y', h IS DISTINCT FROM 'a=>1,b=>NULL', coalesce(h, ''), slice(h, ARRAY['a'])::text "
     "FROM t WHERE id IN (1, 3, 4) ORDER BY id",  # beside an hstore an untyped value is an hstore
     [(1, '"a"=>"1", "b"=>NULL', False, '"a"=>"1", "b"=>NULL', '"a"=>"1"'), (3, None, True, "", None),
      (4, "", True, '"x"=>"y"', "")]),
    ("SELECT id FROM t WHERE h IN ('a=>1,b=>NULL', 'x=>y') ORDER BY id", [(1,), (4,)]),
    ("SELECT count(DISTINCT h), count(*) FILTER (WHERE h @> '') FROM t", [(4, 4)]),
    (r"""SELECT 'a=>"NULL", b=>null, c=>NuLl,'::hstore, e'a\\"b=>c'::hstore, '"a b"=>"c\\d"'::hstore, ''::hstore""",
     [('"a"=>"NULL", "b"=>NULL, "c"=>NULL', '"a\\"b"=>"c"', '"a b"=>"c\\\\d"', "")]),
]


@pytest.mark.parametrize(("sql", "expected"), HSTORE_ANSWERS)
def test_hstore_text_answers_as_postgresql(server, sql: str, expected: list) -> None:
    """Text as PostgreSQL prints it: a raw psycopg connection, no hstore adapter."""
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        conn.adapters.register_loader(HSTORE_OID, psycopg.types.string.TextLoader)
        for oid in (1009, 1015, 1016, 1000, 16):  # arrays and booleans: their text, as psql shows them
            conn.adapters.register_loader(oid, psycopg.types.string.TextLoader)
        got = conn.execute(sql).fetchall()
    assert [tuple(_bool_text(x) for x in r) for r in got] == [tuple(_bool_text(x) for x in r) for r in expected]


def _bool_text(x):
    return {True: "t", False: "f"}.get(x, x) if isinstance(x, bool) else x


@pytest.mark.parametrize(("sql", "sqlstate"), [
    ("SELECT 'a=>1 b=>2'::hstore", "42601"), ("SELECT 'a=>'::hstore", "42601"),
    ("SELECT hstore(ARRAY['a'], ARRAY['1','2'])", "2202E"), ("SELECT hstore(ARRAY['a',NULL], ARRAY['1','2'])", "22004"),
    ("SELECT each(h) FROM t", "0A000"), ("SELECT h FROM t ORDER BY h", "0A000"), ("SELECT h < h FROM t", "0A000"),
    ("SELECT hstore_to_json(h) FROM t", "0A000"), ("SELECT cardinality(h) FROM t", "0A000"),
    ("SELECT map_keys(h) FROM t", "42883"), ("SELECT h - 'a' FROM t", "42601"),  # 'a' is read as an hstore
    ("SELECT (h).a FROM t", "42809"),
])
def test_hstore_errors(server, sql: str, sqlstate: str) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as e:
            conn.execute(sql)
        assert e.value.sqlstate == sqlstate
    if sqlstate == "42601":
        assert "syntax error in hstore" in str(e.value)


def test_hstore_psycopg_adapter_text_and_binary(server) -> None:
    from psycopg.types import TypeInfo
    from psycopg.types.hstore import register_hstore

    with psycopg.connect(dsn(server), autocommit=True) as conn:
        info = TypeInfo.fetch(conn, "hstore")
        assert (info.oid, info.array_oid) == (HSTORE_OID, HSTORE_OID + 1)
        register_hstore(info, conn)
        conn.execute("CREATE TABLE hs (id int, h hstore)")
        try:
            conn.execute("INSERT INTO hs VALUES (%s, %s), (%s, %s)", (1, {"k": "v", "n": None, 'q"\\': "é"}, 2, {}))
            assert conn.execute("SELECT h FROM hs ORDER BY id").fetchall() == [({"k": "v", "n": None, 'q"\\': "é"},),
                                                                               ({},)]
            assert conn.execute("SELECT id FROM hs WHERE h @> %s", ({"k": "v"},)).fetchall() == [(1,)]
            assert conn.cursor(binary=True).execute("SELECT h FROM hs WHERE id = 2").fetchall() == [({},)]
            with psycopg.connect(dsn(server), autocommit=True) as raw_conn:  # no adapter: the binary bytes
                raw = raw_conn.cursor(binary=True).execute("SELECT h FROM hs WHERE id = 1").fetchone()[0]
            assert raw == (b"\x00\x00\x00\x03" + b"\x00\x00\x00\x01k\x00\x00\x00\x01v" + b"\x00\x00\x00\x01n\xff\xff\xff\xff"
                           + b"\x00\x00\x00\x03q\"\\\x00\x00\x00\x02\xc3\xa9")
        finally:
            conn.execute("DROP TABLE hs")


def test_hstore_psycopg2_and_asyncpg_binary(server) -> None:
    psycopg2 = pytest.importorskip("psycopg2")
    extras = pytest.importorskip("psycopg2.extras")

    conn = psycopg2.connect(dsn(server))
    try:
        extras.register_hstore(conn)
        cur = conn.cursor()
        cur.execute("SELECT h FROM t WHERE id = 1")
        assert cur.fetchall() == [({"a": "1", "b": None},)]
        cur.execute("SELECT %s::hstore -> 'z'", ({"z": "1"},))
        assert cur.fetchall() == [("1",)]
        conn.rollback()
    finally:
        conn.close()
    asyncpg = pytest.importorskip("asyncpg")

    async def binary_round_trip():
        host, port = server.address
        ac = await asyncpg.connect(host=host, port=port, user="writer", password="w", database="db", ssl=False)
        try:
            await ac.set_builtin_type_codec("hstore", codec_name="pg_contrib.hstore")
            got = await ac.fetchval("SELECT h FROM t WHERE id = 5")
            echoed = await ac.fetchval("SELECT $1::hstore", {"b": None, "a": "1"})
            return got, echoed
        finally:
            await ac.close()

    got, echoed = asyncio.run(binary_round_trip())
    assert got == {'k"q': "v,w"} and echoed == {"a": "1", "b": None}


def test_sqlalchemy_hstore_and_citext(server) -> None:
    sa = pytest.importorskip("sqlalchemy")
    from sqlalchemy.dialects.postgresql import CITEXT, HSTORE

    host, port = server.address
    engine = sa.create_engine(f"postgresql+psycopg://writer:w@{host}:{port}/db")
    md = sa.MetaData()
    docs = sa.Table("docs", md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("h", HSTORE),
                    sa.Column("c", CITEXT))
    try:
        md.create_all(engine)
        with engine.begin() as c:
            c.execute(docs.insert(), [{"id": 1, "h": {"a": "1", "b": None}, "c": "Hello"},
                                      {"id": 2, "h": {}, "c": "world"}, {"id": 3, "h": None, "c": None}])
        with engine.connect() as c:
            assert c.execute(sa.select(docs).order_by(docs.c.id)).all() == [
                (1, {"a": "1", "b": None}, "Hello"), (2, {}, "world"), (3, None, None)]
            h = docs.c.h
            got = c.execute(sa.select(h["a"], h.has_key("b"), h.contains({"a": "1"}), h.defined("b"),
                                      h.delete("a"), h.keys(), h.vals(), h + {"q": "r"})
                            .where(docs.c.id == 1)).one()
            assert tuple(got) == ("1", True, True, False, {"b": None}, ["a", "b"], ["1", None],
                                  {"a": "1", "b": None, "q": "r"})
            assert c.execute(sa.select(docs.c.id).where(docs.c.c == "HELLO")).all() == [(1,)]
    finally:
        md.drop_all(engine)
        engine.dispose()


def test_copy_to_prints_hstore_and_citext_as_postgresql(server) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        for options, expected in [("", b'"a"=>"1", "b"=>NULL\tAbc\n"k\\\\"q"=>"v,w"\tb_c\n'),
                                  (" (FORMAT csv)", b'"""a""=>""1"", ""b""=>NULL",Abc\n"""k\\""q""=>""v,w""",b_c\n')]:
            with conn.cursor().copy(f"COPY (SELECT h, c FROM t WHERE id IN (1, 5) ORDER BY id) TO STDOUT{options}") as cp:
                assert b"".join(bytes(chunk) for chunk in cp) == expected


def test_extensions_are_versioned_with_the_branch(tmp_path) -> None:
    path = tmp_path / "db"
    db = reeldb.connect(path)
    db.execute("CREATE TABLE keep (id INT)")
    db.branch("before", checkout=False)
    db.execute("CREATE EXTENSION citext")
    db.execute("CREATE TABLE names (n citext)")
    db.execute("INSERT INTO names VALUES ('Ada')")
    db.branch("after", checkout=False)
    db.close()
    before = reeldb.connect(path, branch="before")
    with pytest.raises(reeldb.ProgrammingError):
        before.execute("SELECT 'a'::citext")
    assert before.execute("SELECT count(*) FROM pg_extension WHERE extname = 'citext'").fetchone() == (0,)
    before.close()
    after = reeldb.connect(path, branch="after")
    assert after.execute("SELECT n FROM names WHERE n = 'ADA'").fetchall() == [("Ada",)]
    after.close()


def test_create_table_as_and_temporary_tables(tmp_path) -> None:
    db = reeldb.connect(tmp_path / "db")
    db.execute("CREATE EXTENSION citext")
    db.execute("CREATE EXTENSION hstore")
    db.execute("CREATE TABLE src (c citext, h hstore)")
    db.execute("INSERT INTO src VALUES ('Abc', 'a=>1'), ('aBC', NULL)")
    db.execute("CREATE TABLE copied AS SELECT c FROM src")  # PostgreSQL: a citext column
    assert db.execute("SELECT count(*) FROM copied WHERE c = 'abc'").fetchone() == (2,)
    for sql in ("CREATE TABLE maps AS SELECT h FROM src", "CREATE TEMP TABLE tc (c citext)",
                "CREATE TEMP TABLE th (h hstore)"):
        with pytest.raises(reeldb.NotSupportedError):
            db.execute(sql)
    assert db.execute("SELECT count(*) FROM pg_class WHERE relname IN ('maps', 'tc', 'th')").fetchone() == (0,)
    assert db.execute("SELECT h, h || 'b=>NULL' FROM src WHERE h IS NOT NULL").fetchall() == [
        ({"a": "1"}, {"a": "1", "b": None})]


def test_errors_of_reeldb_functions_cannot_be_posed_as(tmp_path) -> None:
    """Only reeldb's own hstore / citext functions carry a SQLSTATE through DuckDB's message:
    user text quoted in another error does not."""
    db = reeldb.connect(tmp_path / "db")
    with pytest.raises(reeldb.Error) as e:
        db.execute("SELECT 'SQLSTATE 42501: spoof'::int")
    assert e.value.sqlstate == "22P02"
    db.execute("CREATE EXTENSION citext")
    db.execute("CREATE TABLE words (w text)")
    db.execute("INSERT INTO words VALUES ('Émile')")
    with pytest.raises(reeldb.Error) as e:
        db.execute("SELECT w::citext FROM words")
    assert e.value.sqlstate == "0A000" and "U+00C9" in str(e.value)


def test_a_name_citext_in_one_table_and_text_in_another_is_refused(tmp_path) -> None:
    db = reeldb.connect(tmp_path / "db")
    db.execute("CREATE EXTENSION citext")
    db.execute("CREATE TABLE a (id int, n citext)")
    db.execute("CREATE TABLE b (id int, n text)")
    with pytest.raises(reeldb.NotSupportedError, match='column "n" is citext in one table'):
        db.execute("SELECT a.n FROM a JOIN b ON a.id = b.id")
    assert db.execute("SELECT n FROM a").fetchall() == []
