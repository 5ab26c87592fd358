"""`make demo` end to end, small: every step runs and its figures agree with the data."""

from __future__ import annotations

import pytest

import reeldb
from reeldb import demo


@pytest.mark.slow
def test_demo_runs_the_whole_pipeline(tmp_path, capsys) -> None:
    pytest.importorskip("torch")
    summary = demo.run(tmp_path / "demo.reeldb", rows=40, seed=3)
    out = capsys.readouterr().out
    assert "training loop" in out and "total" in out
    db = reeldb.connect(tmp_path / "demo.reeldb", create=False)
    try:
        n = db.execute("SELECT count(*) FROM generations").fetchone()[0]
        kept = db.execute("SELECT count(*) FROM generations WHERE quality_score > 0.85").fetchone()[0]
    finally:
        db.close()
    assert summary["rows"] == 40
    assert summary["main_rows"] == n == (48 if summary["merged"] else 40)
    assert summary["trained"] == kept > 0
