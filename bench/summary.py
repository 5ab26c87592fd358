"""The summary table every benchmark prints at its end (plain text, aligned columns)."""

from __future__ import annotations


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
