"""What SQLAlchemy's PostgreSQL dialect (``postgresql+psycopg``) needs of ``reeldb serve``,
found by running its dialect compliance suite (compat/sqlalchemy_suite.py): each checked
through SQLAlchemy and psycopg against a real server on 127.0.0.1, with the answers a real
PostgreSQL 16 gives.

Foreign keys: declared in CREATE TABLE (column REFERENCES, table FOREIGN KEY) and by
ALTER TABLE (SQLAlchemy's ``use_alter``), reflected by the inspector, enforced at the end of
each statement (23503 with Postgres' message and DETAIL), DROP / TRUNCATE of a referenced
table refused as Postgres refuses them, options reeldb does not enforce refused (0A000), and
concurrent writes to the two sides of a key serialized (40001).
"""

from __future__ import annotations

import pytest

import reeldb
from reeldb.server.server import BackgroundServer

psycopg = pytest.importorskip("psycopg")
sa = pytest.importorskip("sqlalchemy")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = tmp_path_factory.mktemp("sqla") / "shop"
    reeldb.connect(path).close()
    srv = BackgroundServer(str(path), port=0, max_connections=16)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def engine(server):
    host, port = server.address
    eng = sa.create_engine(f"postgresql+psycopg://tester@{host}:{port}/shop")
    yield eng
    eng.dispose()


def dsn(server) -> str:
    host, port = server.address
    return f"postgresql://tester@{host}:{port}/shop"


@pytest.fixture
def shop(engine):
    """users <- orders (column key), users <- users (self reference), (region, code) <- stores
    (a named composite key with ON UPDATE RESTRICT); dropped after the test."""
    md = sa.MetaData()
    sa.Table("users", md, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("manager_id", sa.Integer, sa.ForeignKey("users.id", name="user_manager_fk")))
    sa.Table("orders", md, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id")), sa.Column("note", sa.String(20)))
    sa.Table("regions", md, sa.Column("region", sa.String(10)), sa.Column("code", sa.Integer),
             sa.PrimaryKeyConstraint("region", "code"))
    sa.Table("stores", md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("r", sa.String(10)),
             sa.Column("c", sa.Integer),
             sa.ForeignKeyConstraint(["r", "c"], ["regions.region", "regions.code"], name="store_region_fk",
                                     onupdate="RESTRICT"))
    md.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO users VALUES (1, NULL), (2, NULL), (3, 2)"))
        conn.execute(sa.text("INSERT INTO orders VALUES (10, 1, 'first'), (11, NULL, 'no user')"))
    yield md
    md.drop_all(engine)


def count(conn, table: str) -> int:
    return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()


def test_inspector_reflects_foreign_keys_as_postgresql(engine, shop) -> None:
    # the same metadata against PostgreSQL 16.2 gives exactly these
    insp = sa.inspect(engine)
    assert insp.get_foreign_keys("orders") == [
        {"name": "orders_user_id_fkey", "constrained_columns": ["user_id"], "referred_schema": None,
         "referred_table": "users", "referred_columns": ["id"], "options": {}, "comment": None}]
    assert insp.get_foreign_keys("users") == [
        {"name": "user_manager_fk", "constrained_columns": ["manager_id"], "referred_schema": None,
         "referred_table": "users", "referred_columns": ["id"], "options": {}, "comment": None}]
    assert insp.get_foreign_keys("stores") == [
        {"name": "store_region_fk", "constrained_columns": ["r", "c"], "referred_schema": None,
         "referred_table": "regions", "referred_columns": ["region", "code"], "options": {"onupdate": "RESTRICT"},
         "comment": None}]
    order = [name for name, _ in insp.get_sorted_table_and_fkc_names()]  # what drop_all / create_all use
    assert order.index("regions") < order.index("stores") and order.index("users") < order.index("orders")
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT conname, confupdtype, confdeltype, confmatchtype, conkey, confkey, pg_get_constraintdef(oid, true) "
            "FROM pg_constraint WHERE contype = 'f' AND conrelid = 'stores'::regclass")).all()
        assert rows == [("store_region_fk", "r", "a", "s", [2, 3], [1, 2],
                         "FOREIGN KEY (r, c) REFERENCES regions(region, code) ON UPDATE RESTRICT")]
        assert conn.execute(sa.text(
            "SELECT constraint_type FROM information_schema.table_constraints WHERE constraint_name = 'store_region_fk' "
            "AND table_schema = 'public'"
        )).all() == [("FOREIGN KEY",)]


def test_a_row_without_its_referenced_row_is_refused_with_23503(engine, shop) -> None:
    with engine.connect() as conn:
        with pytest.raises(sa.exc.IntegrityError) as info:
            conn.execute(sa.text("INSERT INTO orders VALUES (12, 99, 'orphan')"))
        conn.rollback()
        err = info.value.orig
        assert err.sqlstate == "23503"
        assert err.diag.message_primary == 'insert or update on table "orders" violates foreign key constraint ' \
                                           '"orders_user_id_fkey"'
        assert err.diag.message_detail == 'Key (user_id)=(99) is not present in table "users".'
        with pytest.raises(sa.exc.IntegrityError) as info:
            conn.execute(sa.text("DELETE FROM users WHERE id = 1"))
        conn.rollback()
        assert info.value.orig.diag.message_primary == \
            'update or delete on table "users" violates foreign key constraint "orders_user_id_fkey" on table "orders"'
        assert info.value.orig.diag.message_detail == 'Key (id)=(1) is still referenced from table "orders".'
        with pytest.raises(sa.exc.IntegrityError) as info:
            conn.execute(sa.text("DELETE FROM users WHERE id = 2"))  # user 3's manager: a self reference
        conn.rollback()
        assert info.value.orig.diag.message_primary == \
            'update or delete on table "users" violates foreign key constraint "user_manager_fk" on table "users"'
        with pytest.raises(sa.exc.IntegrityError) as info:
            conn.execute(sa.text("INSERT INTO stores VALUES (1, 'eu', 7)"))
        conn.rollback()
        assert info.value.orig.diag.message_detail == 'Key (r, c)=(eu, 7) is not present in table "regions".'
        # MATCH SIMPLE: a key with a NULL column is not checked
        conn.execute(sa.text("INSERT INTO stores VALUES (2, 'eu', NULL)"))
        conn.execute(sa.text("DELETE FROM users WHERE id = 3"))  # nothing references user 3
        conn.commit()
        assert count(conn, "orders") == 2 and count(conn, "users") == 2 and count(conn, "stores") == 1


def test_a_violation_inside_a_transaction_fails_it_and_nothing_commits(engine, shop) -> None:
    with engine.connect() as conn:
        conn.execute(sa.text("INSERT INTO users VALUES (5, 1)"))
        with pytest.raises(sa.exc.IntegrityError):
            conn.execute(sa.text("UPDATE orders SET user_id = 99 WHERE id = 10"))
        with pytest.raises(sa.exc.InternalError, match="current transaction is aborted"):
            conn.execute(sa.text("SELECT 1"))
        conn.rollback()
        assert count(conn, "users") == 3
        assert conn.execute(sa.text("SELECT user_id FROM orders WHERE id = 10")).scalar() == 1
        # ... and a statement that deletes the parent and its children together passes
        conn.execute(sa.text("INSERT INTO users VALUES (6, NULL)"))
        conn.execute(sa.text("INSERT INTO orders VALUES (20, 6, 'x')"))
        conn.execute(sa.text("DELETE FROM orders WHERE user_id = 6"))
        conn.execute(sa.text("DELETE FROM users WHERE id = 6"))
        conn.commit()
        assert count(conn, "users") == 3 and count(conn, "orders") == 2


def test_drop_and_truncate_of_a_referenced_table_are_refused_as_postgresql(server, shop) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.DependentObjectsStillExist) as info:
            conn.execute("DROP TABLE regions")
        assert info.value.diag.message_primary == "cannot drop table regions because other objects depend on it"
        assert info.value.diag.message_detail == "constraint store_region_fk on table stores depends on table regions"
        assert info.value.diag.message_hint == "Use DROP ... CASCADE to drop the dependent objects too."
        with pytest.raises(psycopg.errors.FeatureNotSupported) as info:
            conn.execute("TRUNCATE users")
        assert info.value.diag.message_primary == "cannot truncate a table referenced in a foreign key constraint"
        assert info.value.diag.message_detail == 'Table "orders" references "users".'
        with pytest.raises(psycopg.errors.DependentObjectsStillExist):
            conn.execute("ALTER TABLE users DROP COLUMN id")
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (3,)
        assert conn.execute("SELECT count(*) FROM pg_class WHERE relname = 'regions' "
                            "AND relnamespace = 'public'::regnamespace").fetchone() == (1,)
        conn.execute("TRUNCATE orders, users")  # both sides at once: allowed
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (0,)
        notices = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary))
        conn.execute("DROP TABLE regions CASCADE")
        assert notices == ["drop cascades to constraint store_region_fk on table stores"]
        assert conn.execute("SELECT count(*) FROM pg_constraint WHERE conname = 'store_region_fk'").fetchone() == (0,)
        conn.execute("CREATE TABLE regions (region VARCHAR(10), code INT, PRIMARY KEY (region, code))")


def test_alter_table_adds_and_drops_a_foreign_key_checking_existing_rows(engine) -> None:
    # SQLAlchemy's use_alter: CREATE both tables, then ALTER TABLE ... ADD CONSTRAINT
    md = sa.MetaData()
    sa.Table("a", md, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("b_id", sa.Integer, sa.ForeignKey("b.id", name="a_b_fk", use_alter=True)))
    sa.Table("b", md, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("a_id", sa.Integer, sa.ForeignKey("a.id", name="b_a_fk", use_alter=True)))
    md.create_all(engine)
    try:
        assert [fk["name"] for fk in sa.inspect(engine).get_foreign_keys("a")] == ["a_b_fk"]
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE a DROP CONSTRAINT a_b_fk"))
            conn.execute(sa.text("INSERT INTO a VALUES (1, 42)"))
        with engine.connect() as conn:
            with pytest.raises(sa.exc.IntegrityError) as info:
                conn.execute(sa.text("ALTER TABLE a ADD CONSTRAINT a_b_fk FOREIGN KEY (b_id) REFERENCES b (id)"))
            conn.rollback()
            assert info.value.orig.diag.message_detail == 'Key (b_id)=(42) is not present in table "b".'
            assert [fk["name"] for fk in sa.inspect(conn).get_foreign_keys("a")] == []
            conn.execute(sa.text("INSERT INTO b VALUES (42, 1)"))
            conn.execute(sa.text("ALTER TABLE a ADD CONSTRAINT a_b_fk FOREIGN KEY (b_id) REFERENCES b (id)"))
            conn.commit()
    finally:
        md.drop_all(engine)  # drops the constraints first, then the tables
    assert not sa.inspect(engine).has_table("a")


@pytest.mark.parametrize(("ddl", "refusal"), [
    ("CREATE TABLE bad (u INT REFERENCES users ON DELETE CASCADE)", "ON DELETE CASCADE is not supported"),
    ("CREATE TABLE bad (u INT REFERENCES users ON UPDATE SET NULL)", "ON UPDATE SET NULL is not supported"),
    ("CREATE TABLE bad (u INT, v INT, FOREIGN KEY (u, v) REFERENCES regions MATCH FULL)",
     "MATCH FULL foreign keys are not supported"),
    ("CREATE TABLE bad (u INT, FOREIGN KEY (u) REFERENCES users DEFERRABLE INITIALLY DEFERRED)",
     "DEFERRABLE foreign keys are not supported"),
    ("CREATE TABLE bad (u INT REFERENCES users DEFERRABLE)", "DEFERRABLE constraints are not supported"),
])
def test_foreign_key_options_reeldb_does_not_enforce_are_refused(server, shop, ddl: str, refusal: str) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.FeatureNotSupported, match=refusal):
            conn.execute(ddl)
        assert conn.execute("SELECT count(*) FROM pg_class WHERE relname = 'bad'").fetchone() == (0,)


@pytest.mark.parametrize(("ddl", "sqlstate", "message"), [
    ("CREATE TABLE bad (u TEXT REFERENCES users)", "42804",
     'foreign key constraint "bad_u_fkey" cannot be implemented'),
    ("CREATE TABLE bad (u INT, v INT, FOREIGN KEY (u, v) REFERENCES users)", "42830",
     "number of referencing and referenced columns for foreign key disagree"),
    ("CREATE TABLE bad (u INT REFERENCES orders (note))", "42830",
     'there is no unique constraint matching given keys for referenced table "orders"'),
    ("CREATE TABLE bad (u INT REFERENCES nosuch)", "42P01", 'relation "nosuch" does not exist'),
])
def test_bad_foreign_keys_get_postgresql_errors(server, shop, ddl: str, sqlstate: str, message: str) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as info:
            conn.execute(ddl)
        assert (info.value.sqlstate, info.value.diag.message_primary) == (sqlstate, message)
        assert conn.execute("SELECT count(*) FROM pg_class WHERE relname = 'bad'").fetchone() == (0,)


def test_concurrent_writes_to_both_sides_of_a_key_do_not_both_commit(server, shop) -> None:
    """A new order for user 1 and, concurrently, the deletion of user 1 (which sees no order
    for it): one of the two must fail, or an order would reference no user."""
    with psycopg.connect(dsn(server)) as a, psycopg.connect(dsn(server), autocommit=True) as b:
        a.execute("DELETE FROM orders WHERE user_id = 1")
        a.commit()
        a.execute("INSERT INTO orders VALUES (30, 1, 'racing')")  # user 1 is there: the statement passes
        b.execute("DELETE FROM users WHERE id = 1")  # b sees no order of user 1: passes, and commits first
        with pytest.raises(psycopg.errors.SerializationFailure):
            a.commit()
        assert b.execute("SELECT count(*) FROM orders WHERE user_id = 1").fetchone() == (0,)
        assert b.execute("SELECT count(*) FROM users WHERE id = 1").fetchone() == (0,)


def test_plain_btree_indexes_are_created_reflected_and_dropped(engine, server) -> None:
    md = sa.MetaData()
    sa.Table("ix_t", md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("a", sa.Integer),
             sa.Column("b", sa.String(10)), sa.Column("Mixed", sa.Integer),
             sa.Index("ix_t_ab", "a", sa.desc("b")), sa.Index("ix_t_mixed", "Mixed"),
             sa.Index(None, "b", postgresql_include=["a"]))
    md.create_all(engine)
    try:
        # PostgreSQL 16.2 reflects the same metadata exactly so
        assert sa.inspect(engine).get_indexes("ix_t") == [
            {"name": "ix_ix_t_b", "unique": False, "column_names": ["b"], "dialect_options": {"postgresql_include": ["a"]}},
            {"name": "ix_t_ab", "unique": False, "column_names": ["a", "b"], "column_sorting": {"b": ("desc",)},
             "dialect_options": {"postgresql_include": []}},
            {"name": "ix_t_mixed", "unique": False, "column_names": ["Mixed"],
             "dialect_options": {"postgresql_include": []}}]
        with psycopg.connect(dsn(server), autocommit=True) as conn:
            defs = conn.execute("SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'ix_t'::regclass "
                                "AND NOT indisprimary ORDER BY 1").fetchall()
            assert defs == [("CREATE INDEX ix_ix_t_b ON public.ix_t USING btree (b) INCLUDE (a)",),
                            ("CREATE INDEX ix_t_ab ON public.ix_t USING btree (a, b DESC)",),
                            ('CREATE INDEX ix_t_mixed ON public.ix_t USING btree ("Mixed")',)]
            conn.execute("CREATE INDEX ON ix_t (a NULLS FIRST, b DESC NULLS LAST)")  # named as Postgres names it
            assert conn.execute("SELECT pg_get_indexdef('ix_t_a_b_idx'::regclass)").fetchone() == (
                "CREATE INDEX ix_t_a_b_idx ON public.ix_t USING btree (a NULLS FIRST, b DESC NULLS LAST)",)
            with pytest.raises(psycopg.errors.DuplicateTable):
                conn.execute("CREATE INDEX ix_t_ab ON ix_t (a)")
            conn.execute("CREATE INDEX IF NOT EXISTS ix_t_ab ON ix_t (a)")
            for refused in ("CREATE INDEX p ON ix_t (a) WHERE a > 0", "CREATE INDEX e ON ix_t (lower(b))"):
                with pytest.raises(psycopg.errors.FeatureNotSupported):
                    conn.execute(refused)
            conn.execute("ALTER TABLE ix_t DROP COLUMN b")  # the indexes over b go with it
            conn.execute("DROP INDEX ix_t_mixed")
            assert conn.execute("SELECT count(*) FROM pg_index WHERE indrelid = 'ix_t'::regclass "
                                "AND NOT indisprimary").fetchone() == (0,)
            conn.execute("INSERT INTO ix_t VALUES (1, 2, 3)")
            assert conn.execute("SELECT a FROM ix_t WHERE a = 2").fetchall() == [(2,)]
    finally:
        md.drop_all(engine)


def test_json_path_operators(engine) -> None:
    """SQLAlchemy's JSON index paths are #> and #>> with a text[] parameter."""
    md = sa.MetaData()
    t = sa.Table("docs", md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("data", sa.JSON))
    md.create_all(engine)
    try:
        with engine.begin() as conn:
            conn.execute(t.insert(), [{"id": 1, "data": {"key1": {"k/2": [10, 20]}, "n": None}},
                                      {"id": 2, "data": {"key1": {"k/2": [30]}}}])
        path = t.c.data[("key1", "k/2", 1)]
        with engine.connect() as conn:
            assert conn.execute(sa.select(path.as_integer()).where(t.c.id == 1)).scalar() == 20
            assert conn.execute(sa.select(t.c.id).where(path.as_integer() == 20)).all() == [(1,)]
            assert conn.execute(sa.select(t.c.data[("key1", "k/2", 0)].as_string()).order_by(t.c.id)).all() == \
                [("10",), ("30",)]
            assert conn.execute(sa.select(path).order_by(t.c.id)).all() == [(20,), (None,)]  # past the end: NULL
            assert conn.execute(sa.text("SELECT data #>> '{key1,k/2,0}', data #> '{n}', data #>> '{key1,NULL}' "
                                        "FROM docs WHERE id = 1")).one() == ("10", None, None)
            with pytest.raises(sa.exc.NotSupportedError, match="path element"):  # from the end in Postgres
                conn.execute(sa.text("SELECT data #> '{key1,k/2,-1}' FROM docs"))
            conn.rollback()
            with pytest.raises(sa.exc.NotSupportedError, match="object or array"):  # Postgres' text of it differs
                conn.execute(sa.text("SELECT data #>> '{key1}' FROM docs"))
    finally:
        md.drop_all(engine)


def test_unique_indexes_are_enforced_and_reflected(engine, server) -> None:
    md = sa.MetaData()
    sa.Table("ux_t", md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("a", sa.Integer),
             sa.Column("b", sa.String(10)), sa.Index("ux_t_ab", "a", "b", unique=True))
    md.create_all(engine)
    try:
        insp = sa.inspect(engine)  # PostgreSQL 16.2: the same
        assert insp.get_indexes("ux_t") == [{"name": "ux_t_ab", "unique": True, "column_names": ["a", "b"],
                                             "dialect_options": {"postgresql_include": []}}]
        assert insp.get_unique_constraints("ux_t") == []
        with psycopg.connect(dsn(server), autocommit=True) as conn:
            conn.execute("INSERT INTO ux_t VALUES (1, 1, 'x'), (2, NULL, 'y'), (3, NULL, 'y')")  # NULLs are distinct
            with pytest.raises(psycopg.errors.UniqueViolation) as info:
                conn.execute("INSERT INTO ux_t VALUES (4, 1, 'x')")
            assert info.value.diag.message_primary == 'duplicate key value violates unique constraint "ux_t_ab"'
            conn.execute("INSERT INTO ux_t VALUES (5, 1, 'z')")
            with pytest.raises(psycopg.errors.UniqueViolation) as info:
                conn.execute("CREATE UNIQUE INDEX ux_t_b ON ux_t (b)")
            assert (info.value.diag.message_primary, info.value.diag.message_detail) == (
                'could not create unique index "ux_t_b"', "Key (b)=(y) is duplicated.")
            conn.execute("CREATE TABLE ux_ref (a INT, b VARCHAR(10), FOREIGN KEY (a, b) REFERENCES ux_t (a, b))")
            with pytest.raises(psycopg.errors.DependentObjectsStillExist):
                conn.execute("DROP INDEX ux_t_ab")
            conn.execute("DROP TABLE ux_ref")
            conn.execute("DROP INDEX ux_t_ab")
            conn.execute("INSERT INTO ux_t VALUES (6, 1, 'x')")  # no longer unique
            assert conn.execute("SELECT count(*) FROM ux_t WHERE a = 1 AND b = 'x'").fetchone() == (2,)
    finally:
        md.drop_all(engine)


def test_comments_on_constraints(engine, server, shop) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        conn.execute("COMMENT ON CONSTRAINT store_region_fk ON stores IS 'where it is'")
        conn.execute("COMMENT ON CONSTRAINT users_pkey ON users IS 'the key'")
        with pytest.raises(psycopg.errors.UndefinedObject) as info:
            conn.execute("COMMENT ON CONSTRAINT nosuch ON stores IS 'x'")
        assert info.value.diag.message_primary == 'constraint "nosuch" for table "stores" does not exist'
        assert conn.execute("SELECT d.description FROM pg_description d JOIN pg_constraint c ON c.oid = d.objoid "
                            "AND d.classoid = 'pg_constraint'::regclass WHERE c.conname = 'users_pkey' "
                            "AND c.connamespace = 'public'::regnamespace").fetchall() == [("the key",)]
    # PostgreSQL 16.2: the same
    assert [fk["comment"] for fk in sa.inspect(engine).get_foreign_keys("stores")] == ["where it is"]
    assert sa.inspect(engine).get_pk_constraint("users")["comment"] == "the key"
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        conn.execute("ALTER TABLE stores DROP CONSTRAINT store_region_fk")
        conn.execute("ALTER TABLE stores ADD CONSTRAINT store_region_fk FOREIGN KEY (r, c) REFERENCES regions")
    assert [fk["comment"] for fk in sa.inspect(engine).get_foreign_keys("stores")] == [None]  # went with it


def test_schema_qualified_column_references(engine) -> None:
    """SQLAlchemy writes a schema's table's columns as schema.table.column."""
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA IF NOT EXISTS sq"))
    md = sa.MetaData()
    local = sa.Table("same", md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("other_id", sa.Integer))
    remote = sa.Table("same", md, sa.Column("id", sa.Integer, primary_key=True), schema="sq")
    md.create_all(engine)
    try:
        with engine.begin() as conn:
            conn.execute(local.insert(), [{"id": 1, "other_id": 10}, {"id": 2, "other_id": 20}])
            conn.execute(remote.insert(), [{"id": 10}])
        a = local.alias()
        stmt = sa.select(a.c.id, remote.c.id).join_from(a, remote, a.c.other_id == remote.c.id)
        assert "sq.same.id" in str(stmt)
        with engine.connect() as conn:
            assert conn.execute(stmt).all() == [(1, 10)]  # PostgreSQL 16.2: the same
            assert conn.execute(sa.select(remote.c.id).where(remote.c.id > 0)).all() == [(10,)]
            inserted = remote.insert().values(id=11).returning(remote.c.id)
            assert "RETURNING sq.same.id" in str(inserted.compile(dialect=engine.dialect))
            assert conn.execute(inserted).all() == [(11,)]
            assert conn.execute(sa.text("DELETE FROM sq.same WHERE sq.same.id = 11 RETURNING same.id")).all() == [(11,)]
    finally:
        md.drop_all(engine)


def test_select_for_update_is_refused_cleanly(engine) -> None:
    """reeldb takes no row locks: FOR UPDATE / FOR SHARE (SQLAlchemy's with_for_update()) get
    0A000, not a syntax error, and the transaction is failed like any error's."""
    with engine.connect() as conn:
        for sql in ("SELECT 1 FOR UPDATE", "SELECT 1 FOR SHARE NOWAIT",
                    "SELECT * FROM (SELECT 1 AS x FOR KEY SHARE) AS s"):
            with pytest.raises(sa.exc.NotSupportedError, match="FOR UPDATE / FOR SHARE is not supported"):
                conn.execute(sa.text(sql))
            conn.rollback()
        assert conn.execute(sa.select(sa.literal(1))).scalar() == 1


def test_time_literals_round_trip(engine) -> None:
    """SQLAlchemy renders a literal time as text ('12:57:18.000396'), as PostgreSQL reads it."""
    import datetime as dt

    md = sa.MetaData()
    t = sa.Table("times", md, sa.Column("x", sa.Time))
    md.create_all(engine)
    try:
        with engine.begin() as conn:
            value = dt.time(12, 57, 18, 396)
            conn.execute(t.insert().values(x=sa.literal(value, sa.Time)), {})
            conn.execute(sa.text("INSERT INTO times VALUES (' 1:2 ')"))
            compiled = str(t.insert().values(x=value).compile(dialect=engine.dialect,
                                                             compile_kwargs={"literal_binds": True}))
            assert "'12:57:18.000396'" in compiled
            conn.execute(sa.text(compiled))
        with engine.connect() as conn:
            assert conn.execute(sa.select(t.c.x).order_by(t.c.x)).scalars().all() == [
                dt.time(1, 2), value, value]
            with pytest.raises(sa.exc.DataError):  # 22008, as PostgreSQL
                conn.execute(sa.text("INSERT INTO times VALUES ('25:00')"))
            conn.rollback()
            with pytest.raises(sa.exc.NotSupportedError):  # a form PostgreSQL reads that reeldb does not
                conn.execute(sa.text("INSERT INTO times VALUES ('04:05 PM')"))
            conn.rollback()
            assert conn.execute(sa.select(sa.func.count()).select_from(t)).scalar() == 3
    finally:
        md.drop_all(engine)


def test_named_keys_keep_their_names(engine, server) -> None:
    """CONSTRAINT name PRIMARY KEY / UNIQUE (SQLAlchemy's naming conventions) keep the name
    in the catalog and in violations, as PostgreSQL's do."""
    md = sa.MetaData(naming_convention={"pk": "pk_%(table_name)s", "uq": "uq_%(table_name)s_%(column_0_name)s"})
    sa.Table("named", md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("a", sa.Integer),
             sa.Column("b", sa.Integer), sa.UniqueConstraint("b", "a"))
    md.create_all(engine)
    try:
        insp = sa.inspect(engine)  # PostgreSQL 16.2: the same
        assert insp.get_pk_constraint("named")["name"] == "pk_named"
        assert insp.get_unique_constraints("named") == [
            {"name": "uq_named_b", "column_names": ["b", "a"], "comment": None,
             "dialect_options": {"postgresql_include": [], "postgresql_nulls_not_distinct": False}}]
        with psycopg.connect(dsn(server), autocommit=True) as conn:
            assert conn.execute("SELECT pg_get_constraintdef('uq_named_b'::regclass::oid)").fetchone() is not None
            assert conn.execute("SELECT pg_get_indexdef('uq_named_b'::regclass)").fetchone() == (
                "CREATE UNIQUE INDEX uq_named_b ON public.named USING btree (b, a)",)
            conn.execute("INSERT INTO named VALUES (1, 1, 1)")
            with pytest.raises(psycopg.errors.UniqueViolation) as info:
                conn.execute("INSERT INTO named VALUES (2, 1, 1)")
            assert info.value.diag.message_primary == 'duplicate key value violates unique constraint "uq_named_b"'
            assert info.value.diag.message_detail == "Key (b, a)=(1, 1) already exists."
            with pytest.raises(psycopg.errors.DuplicateTable):
                conn.execute("CREATE TABLE twice (a INT CONSTRAINT same PRIMARY KEY, b INT CONSTRAINT same UNIQUE)")
    finally:
        md.drop_all(engine)


def test_writes_to_interval_columns_are_refused_cleanly(engine) -> None:
    """An interval column has no stored form yet (Arrow's interval has no Parquet type): a
    write to its table is refused with 0A000 (it was an internal error, XX000), nothing written."""
    md = sa.MetaData()
    t = sa.Table("spans", md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("d", sa.Interval))
    md.create_all(engine)
    try:
        import datetime as dt

        with engine.connect() as conn:
            for row in ({"id": 1, "d": dt.timedelta(days=1)}, {"id": 2}):
                with pytest.raises(sa.exc.NotSupportedError, match='interval columns cannot be written yet'):
                    conn.execute(t.insert(), row)
                conn.rollback()
            assert conn.execute(sa.select(sa.func.count()).select_from(t)).scalar() == 0
            # interval values themselves work
            assert conn.execute(sa.text("SELECT INTERVAL '1 day' + INTERVAL '2 hours'")).scalar() == \
                dt.timedelta(days=1, hours=2)
    finally:
        md.drop_all(engine)
