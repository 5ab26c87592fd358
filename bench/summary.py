"""What every benchmark prints and keeps: the summary table at its end (plain text,
aligned columns), the figures it writes to JSON, and the machine's load beside them."""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


@dataclass
class Results:
    """Figures by name (for the JSON file) and the summary's rows, in order."""

    title: str = "summary"
    figures: dict[str, Any] = field(default_factory=dict)
    summary: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, name: str, value: str, note: str = "") -> None:
        self.summary.append((name, value, note))

    def print_summary(self, note_head: str = "") -> None:
        print_table(self.title, ("figure", "value", note_head), self.summary)


def print_table(title: str, heads: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    table = [heads, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(heads))]
    line = "-+-".join("-" * w for w in widths)
    print()
    print(title)
    print(line)
    for i, r in enumerate(table):
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if i == 0:
            print(line)
    print(line)
