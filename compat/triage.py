#!/usr/bin/env python3
"""Tabulate the last run of each suite: pass rate, and the largest failure causes by count.

Reads ``.cache/compat/<suite>-results.json`` and prints Markdown: per suite its pass rate,
then the top causes (the reason the suite's cause table gives now, else the one in the
expected-failures file, else the error's signature), each with its count, one example test id and its SQLSTATE and message.
For directing fixes: ``python compat/triage.py [--top 15] [suite ...]``.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402 (compat/ is not a package)

SUITES = ("psycopg2", "psycopg3", "pgvector", "sqlalchemy")


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(suite: str, top: int) -> list[str]:
    path = harness.CACHE / f"{suite}-results.json"
    if not path.exists():
        return [f"## {suite}", "", f"no run yet ({harness.rel(path)} is missing)", ""]
    data = json.loads(path.read_text())
    s = data["summary"]
    judged = s["passed"] + s["failed"] + s["errors"]
    rate = f"{s['passed'] / judged:.1%}" if judged else "n/a"
    lines = [f"## {s.get('title', suite)}", "",
             f"pass rate **{rate}** ({s['passed']} of {judged} that talk to the server; "
             f"{s['skipped']} skipped; {s['seconds']:.0f} s)", ""]
    lines += [f"problem: {p}" for p in s.get("problems", [])]
    causes = importlib.import_module(f"{suite}_suite").CAUSES
    groups: dict[str, list[dict]] = collections.defaultdict(list)
    for test in data["tests"]:
        if test["outcome"] in harness.FAILING:
            reason = (harness.classify(test, causes) or test.get("reason")
                      or harness.auto_reason(test))
            groups[reason].append(test)
    lines += ["| # | cause | count | example test | SQLSTATE: message |",
              "|---|---|---|---|---|"]
    ranked = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:top]
    for rank, (reason, tests) in enumerate(ranked, 1):
        example = tests[0]
        error = f"{example.get('sqlstate') or '-'}: {str(example.get('message', ''))[:160]}"
        lines.append(f"| {rank} | {cell(reason)} | {len(tests)} | `{cell(example['id'])}` | "
                     f"{cell(error)} |")
    return [*lines, ""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("suites", nargs="*", default=list(SUITES))
    args = parser.parse_args(argv)
    for suite in args.suites:
        print("\n".join(table(suite, args.top)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
