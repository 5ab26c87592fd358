"""One configuration object: precedence, refusals, each setting honoured, and docs that list
every setting."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import reeldb
from reeldb import config
from reeldb.config import Config
from versioning_helpers import fragments

ROOT = Path(__file__).resolve().parent.parent
# modules that may read os.environ, and why: other programs' conventions, not reeldb switches
ENVIRONMENT_READERS = {
    "config.py": "reeldb's own settings: the one place",
    "server/server.py": "systemd socket activation (LISTEN_FDS, LISTEN_PID)",
    "loader/torch_loader.py": "PyTorch's distributed launch (RANK, WORLD_SIZE)",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for s in config.SETTINGS:
        monkeypatch.delenv(s.env, raising=False)


def test_argument_over_environment_over_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Config.resolve().auto_compact is True
    monkeypatch.setenv("REELDB_AUTO_COMPACT", "off")
    assert Config.resolve().auto_compact is False
    assert Config.resolve(auto_compact=True).auto_compact is True
    monkeypatch.setenv("REELDB_CACHE_SIZE", "512MB")
    assert Config.resolve().cache_size == 512 << 20
    assert Config.resolve(cache_size=0).cache_size == 0
    monkeypatch.setenv("USER", "someone")
    assert Config.resolve().author == "someone"
    monkeypatch.setenv("REELDB_AUTHOR", "bot")
    assert Config.resolve().author == "bot"
    assert Config.resolve(author="ann").author == "ann"


@pytest.mark.parametrize(("variable", "value"), [
    ("REELDB_GROUP_COMMIT", "maybe"), ("REELDB_AUTO_COMPACT", "2"),
    ("REELDB_CACHE_SIZE", "lots"), ("REELDB_CACHE_SIZE", "-1"), ("REELDB_AUTHOR", "  "),
])
def test_a_bad_value_is_refused_naming_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(reeldb.DataError, match=variable) as err:
        reeldb.connect(tmp_path / "db")
    assert err.value.sqlstate == "22023"
    assert not (tmp_path / "db").exists()  # refused before anything was written


def test_a_bad_argument_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(reeldb.DataError, match="group_commit") as err:
        reeldb.connect(tmp_path / "db", group_commit="sometimes")
    assert err.value.sqlstate == "22023"
    with pytest.raises(reeldb.DataError, match="object storage"):
        reeldb.connect(tmp_path / "db", cache_size="1GB")  # a local folder has no cache
    with pytest.raises(reeldb.DataError, match="given twice"):
        reeldb.connect("s3://bucket/x", cache_size=0, storage_options={"cache_size": 5})


def test_author_is_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REELDB_AUTHOR", "from-env")
    db = reeldb.connect(tmp_path / "db", author="curation-bot")
    db.execute("CREATE TABLE t (a INT)")
    db.execute("INSERT INTO t VALUES (1)")
    assert {c["author"] for c in db.log()[:2]} == {"curation-bot"}
    db.close()
    other = reeldb.connect(tmp_path / "db")
    other.execute("INSERT INTO t VALUES (2)")
    assert other.log()[0]["author"] == "from-env"


@pytest.mark.slow
def test_auto_compact_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counts = {}
    for on in (False, True):
        db = reeldb.connect(tmp_path / f"db{on}", auto_compact=on)
        db.execute("CREATE TABLE t (a INT)")
        for i in range(40):  # more than one tier of one-row fragments
            db.execute("INSERT INTO t VALUES (%s)", [i])
        counts[on] = fragments(db, "t")
        assert db.execute("SELECT count(*), sum(a) FROM t").fetchone() == (40, sum(range(40)))
    assert counts[False] == 40
    assert counts[True] < 40


def test_group_commit_is_honoured(tmp_path: Path) -> None:
    grouped = {}
    for on in (False, True):
        db = reeldb.connect(tmp_path / f"db{on}", group_commit=on)
        assert db.config.group_commit is on
        db.execute("CREATE TABLE t (a INT)")
        db.catalog.contended_until = float("inf")  # as if this process kept losing the head
        db.execute("INSERT INTO t VALUES (1)")
        grouped[on] = db.catalog.commit(db.head).group  # the intents a group commit combined
        assert db.execute("SELECT count(*) FROM t").fetchone() == (1,)
    assert grouped[False] == ()
    assert len(grouped[True]) == 1


def test_every_setting_is_documented() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| `(\w+)` \|", text, re.M)
    assert rows == [(s.name, s.env) for s in config.SETTINGS]
    assert set(rows) and all(f"`{s.env}`" in text for s in config.SETTINGS)


def test_the_environment_is_read_in_one_place() -> None:
    src = ROOT / "src" / "reeldb"
    readers = set()
    for path in src.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv") and \
                    isinstance(node.value, ast.Name) and node.value.id == "os":
                readers.add(path.relative_to(src).as_posix())
    assert readers == set(ENVIRONMENT_READERS)
