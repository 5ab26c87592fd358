"""The reeldb command end to end: a real database folder, real subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import reeldb
from reeldb import cli


@pytest.fixture()
def path(tmp_path) -> str:
    p = str(tmp_path / "db")
    db = reeldb.connect(p)
    db.execute("CREATE TABLE clips (id SERIAL PRIMARY KEY, prompt TEXT, e VECTOR(3), v BYTEA, score REAL)")
    db.execute("INSERT INTO clips (prompt, e, v, score) VALUES ('a cat', '[1,0,0]', %s, 0.85), "
               "('a dog', '[0,1,0]', NULL, 0.5)", [os.urandom(20_000)])
    db.close()
    return p


def run(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reeldb.cli", *argv], input=stdin, capture_output=True,
                          text=True, timeout=60)


def test_sql_c_prints_an_aligned_table(path: str, capsys) -> None:
    assert cli.main(["sql", path, "-c", "SELECT id, prompt, e, v, score FROM clips ORDER BY id"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split("|")[1].strip() == "prompt"
    assert set(out[1]) <= {"-", "+"}
    assert "a cat" in out[2] and "<bytea 20.0 KB>" in out[2] and "0.85" in out[2]
    assert "NULL" in out[3]
    assert out[-1] == "(2 rows)"
    bars = {tuple(i for i, ch in enumerate(line) if ch in "|+") for line in out[:4]}
    assert len(bars) == 1  # columns line up


@pytest.mark.slow
def test_sql_error_exits_1_with_sqlstate(path: str) -> None:
    r = run("sql", path, "-c", "SELECT nope FROM clips")
    assert r.returncode == 1
    assert "ERROR:" in r.stderr and "42703" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_sql_script_from_stdin_writes_and_stops_at_first_error(path: str) -> None:
    script = "INSERT INTO clips (prompt) VALUES ('x');\nSELECT * FROM missing;\nINSERT INTO clips (prompt) VALUES ('y');\n"
    r = run("sql", path, stdin=script)
    assert r.returncode == 1 and "42P01" in r.stderr
    db = reeldb.connect(path)
    assert db.execute("SELECT prompt FROM clips WHERE prompt IN ('x', 'y')").fetchall() == [("x",)]


def test_tables_log_branch_vacuum(path: str, capsys) -> None:
    assert cli.main(["tables", path]) == 0
    assert capsys.readouterr().out.split() == ["clips"]
    assert cli.main(["branch", path, "exp"]) == 0
    capsys.readouterr()
    assert cli.main(["branch", path]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("*") and "main" in line for line in lines)
    assert any("exp" in line and not line.startswith("*") for line in lines)
    assert cli.main(["log", path, "-n", "2"]) == 0
    log = capsys.readouterr().out.splitlines()
    assert len(log) == 2 and "clips +2" in log[0]
    assert cli.main(["vacuum", path]) == 0
    assert capsys.readouterr().out.strip()


def test_commands_refuse_a_folder_that_is_not_a_database(tmp_path) -> None:
    missing = str(tmp_path / "nothing")
    r = run("tables", missing)
    assert r.returncode == 1 and "ERROR" in r.stderr
    assert not os.path.exists(missing)


def test_sql_on_a_branch(path: str, capsys) -> None:
    db = reeldb.connect(path)
    db.branch("exp")
    db.execute("DELETE FROM clips WHERE prompt = 'a dog'")
    assert cli.main(["sql", path, "--branch", "exp", "-c", "SELECT count(*) FROM clips"]) == 0
    assert " 1" in capsys.readouterr().out
    assert cli.main(["sql", path, "-c", "SELECT count(*) FROM clips"]) == 0
    assert " 2" in capsys.readouterr().out


def _diverge(path: str) -> None:
    """main and branch exp edit the same row two ways (q on exp, prompt on main) plus the
    same cell (score) differently, so a merge has one conflict."""
    db = reeldb.connect(path)
    db.branch("exp")
    db.execute("UPDATE clips SET score = 0.9 WHERE prompt = 'a cat'")
    db.execute("INSERT INTO clips (prompt, score) VALUES ('a bird', 0.7)")
    db.checkout("main")
    db.execute("UPDATE clips SET score = 0.1, prompt = 'a big cat' WHERE prompt = 'a cat'")
    db.close()


def test_diff_prints_added_rows_and_changed_cells(path: str, capsys) -> None:
    _diverge(path)
    assert cli.main(["diff", path, "main", "exp"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("clips (modified): +1 added, -0 removed, ~1 changed")
    assert "a bird" in out
    changed = [ln for ln in out.splitlines() if "| score" in ln or "| prompt" in ln]
    assert any("0.1" in ln and "0.9" in ln for ln in changed)  # REAL shown as 0.1, not 0.100000001
    assert cli.main(["diff", path, "main", "main"]) == 0
    assert capsys.readouterr().out.strip() == "no differences"


def test_merge_conflict_prints_a_table_and_writes_nothing(path: str, capsys) -> None:
    _diverge(path)
    head = reeldb.connect(path).head
    assert cli.main(["merge", path, "exp"]) == 1
    err = capsys.readouterr().err
    assert "1 conflict(s), nothing written" in err
    assert "score" in err and "cell" in err and "--strategy" in err
    assert reeldb.connect(path).head == head
    assert cli.main(["merge", path, "exp", "--strategy", "theirs", "-m", "take exp"]) == 0
    out = capsys.readouterr().out
    assert "merged exp into main" in out and "1 conflict(s) resolved as theirs" in out
    db = reeldb.connect(path)
    assert db.execute("SELECT prompt, score FROM clips ORDER BY id").fetchall() == [
        ("a big cat", pytest.approx(0.9)), ("a dog", pytest.approx(0.5)), ("a bird", pytest.approx(0.7))]
    assert db.log(limit=1)[0]["message"] == "take exp"
    assert cli.main(["merge", path, "exp"]) == 0
    assert "already contains" in capsys.readouterr().out


def test_log_graph_draws_the_merge(path: str, capsys) -> None:
    _diverge(path)
    assert cli.main(["merge", path, "exp", "--strategy", "ours"]) == 0
    capsys.readouterr()
    assert cli.main(["log", path, "--graph"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("*") and "merge exp into main" in lines[0]
    assert lines[1] == "|\\"
    assert any(ln.startswith("| *") for ln in lines)  # exp's own commits in the second lane
    assert any(ln.startswith("* |") for ln in lines)  # main's
    assert "|/" in lines
    assert sum(1 for ln in lines if ln.lstrip("|/\\ ").startswith("*") or ln.startswith(("*", "| *"))) \
        == len(reeldb.connect(path).log())


@pytest.mark.slow
def test_tag_optimize_expire_and_vacuum_retain(path: str, capsys) -> None:
    assert cli.main(["tag", path, "v1"]) == 0
    assert "as v1" in capsys.readouterr().out
    assert cli.main(["tag", path]) == 0
    assert capsys.readouterr().out.startswith("v1  ")
    db = reeldb.connect(path)
    for i in range(5):
        db.execute("INSERT INTO clips (prompt) VALUES (%s)", [f"p{i}"])
    db.close()
    assert cli.main(["optimize", path, "clips"]) == 0
    assert "clips: 6 -> 1 fragments" in capsys.readouterr().out
    assert reeldb.connect(path).execute("SELECT count(*) FROM clips").fetchone() == (7,)
    assert cli.main(["vacuum", path, "--retain", "0", "--grace", "0"]) == 0
    assert "removed" in capsys.readouterr().out
    assert reeldb.connect(path, at="v1").execute("SELECT count(*) FROM clips").fetchone() == (2,)  # tags kept
    assert cli.main(["expire", path, "--older-than", "0s"]) == 0
    assert "dropped" in capsys.readouterr().out
    assert cli.main(["tag", path, "-d", "v1"]) == 0
    assert cli.main(["branch", path, "gone"]) == 0
    assert cli.main(["branch", path, "-d", "gone"]) == 0
    assert "deleted branch gone" in capsys.readouterr().out
    r = run("vacuum", path, "--retain", "soon")
    assert r.returncode == 2 and "not a duration" in r.stderr
