"""Copies generated tables into README.md, so its numbers are the code's, never retyped.

Run: python -m experiments.readme README.md

A block in the README looks like

    <!-- include results/baseline/table.md -->
    ...replaced by the file's contents...
    <!-- end include -->

and `<!-- include results/translation-gpu/table.md tables="Shift robustness;the linear trained" -->`
keeps only the tables whose captions contain those texts, in that order.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from mnist_linear import results

BLOCK = re.compile(
    r'(<!-- include (?P<path>\S+)(?: tables="(?P<tables>[^"]+)")? -->\n)(?P<body>.*?)(<!-- end include -->)', re.DOTALL)


def split_tables(text: str) -> list[str]:
    """The tables of a table.md: each starts at a line that opens with its bold caption."""
    starts = [m.start() for m in re.finditer(r"^\*\*", text, re.MULTILINE)]
    return [text[a:b].rstrip("\n") + "\n" for a, b in zip(starts, starts[1:] + [len(text)])]


def _contents(match: re.Match, root: Path) -> str:
    text = (root / match.group("path")).read_text()
    if not match.group("tables"):
        return text
    found = split_tables(text)
    chosen = []
    for caption in match.group("tables").split(";"):
        hits = [t for t in found if caption in t.splitlines()[0]]
        if len(hits) != 1:
            raise ValueError(f"{match.group('path')}: {len(hits)} tables have {caption!r} in their caption, not 1.")
        chosen += hits
    return "\n".join(chosen)


def render(readme: str, root: Path) -> str:
    """The README with every include block refilled from its file."""
    return BLOCK.sub(lambda m: m.group(1) + _contents(m, root) + m.group(5), readme)


def main(argv=None) -> None:
    path = Path((argv or sys.argv[1:])[0])
    results.write_text(path, render(path.read_text(), path.parent))


if __name__ == "__main__":
    main()
