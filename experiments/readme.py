"""Copies generated tables into README.md, so its numbers are the code's, never retyped.

Run: python -m experiments.readme README.md

A block in the README looks like

    <!-- include results/baseline/table.md -->
    ...replaced by the file's contents...
    <!-- end include -->

and `<!-- include results/translation-gpu/table.md tables="Shift robustness;the linear trained" -->`
keeps only the tables whose captions contain those texts, in that order.

    <!-- side by side results/translation/table.md results/translation-fashion/table.md table="Shift robustness"
         columns="0 px;2 px" labels="MNIST;Fashion-MNIST" -->

(on one line) puts the chosen columns of one table from each file next to each other, rows matched by
their first cell (the model), under the first table's caption less its dataset, with a link to both
files for the settings.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from mnist_linear import data, results

BLOCK = re.compile(
    r'(<!-- include (?P<path>\S+)(?: tables="(?P<tables>[^"]+)")? -->\n)(?P<body>.*?)(<!-- end include -->)', re.DOTALL)


SIDE_BY_SIDE = re.compile(
    r'(<!-- side by side (?P<left>\S+) (?P<right>\S+) table="(?P<table>[^"]+)" columns="(?P<columns>[^"]+)" '
    r'labels="(?P<labels>[^"]+)" -->\n)(?P<body>.*?)(?P<end><!-- end include -->)', re.DOTALL)


def split_tables(text: str) -> list[str]:
    """The tables of a table.md: each starts at a line that opens with its bold caption."""
    starts = [m.start() for m in re.finditer(r"^\*\*", text, re.MULTILINE)]
    return [text[a:b].rstrip("\n") + "\n" for a, b in zip(starts, starts[1:] + [len(text)])]


def _read(root: Path, path: str) -> str:
    try:
        return (root / path).read_text()
    except FileNotFoundError:
        raise FileNotFoundError(f"The README includes {path}, which does not exist: make it (`make results` makes "
                                "every included file) or drop the block.") from None


def _contents(match: re.Match, root: Path) -> str:
    text = _read(root, match.group("path"))
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


def _one_table(path: str, caption: str, root: Path) -> tuple[str, list[str], list[list[str]]]:
    """(caption, header, rows) of the one table in `path` whose caption contains `caption`, as cells."""
    hits = [t for t in split_tables(_read(root, path)) if caption in t.splitlines()[0]]
    if len(hits) != 1:
        raise ValueError(f"{path}: {len(hits)} tables have {caption!r} in their caption, not 1.")
    cells = [[c.strip() for c in line.strip()[1:-1].split(" | ")] for line in hits[0].splitlines()
             if line.startswith("|")]
    return hits[0].splitlines()[0].strip("*"), cells[0], cells[2:]  # the header, then the rows after ---


def _side_by_side(match: re.Match, root: Path) -> str:
    columns, labels = match.group("columns").split(";"), match.group("labels").split(";")
    if len(labels) != 2 or not all(columns):
        raise ValueError(f"A side-by-side block needs two labels and named columns, got labels={labels}, "
                         f"columns={columns}.")
    (caption, *left), (_, *right) = (_one_table(match.group(side), match.group("table"), root)
                                     for side in ("left", "right"))
    tables = [left, right]
    picked = []
    for (header, rows), path in zip(tables, (match.group("left"), match.group("right"))):
        missing = [c for c in columns if c not in header]
        if missing:
            raise ValueError(f"{path}: no column {missing} in {header}.")
        picked.append({row[0]: [row[header.index(c)] for c in columns] for row in rows})
    names = list(dict.fromkeys([*picked[0], *picked[1]]))
    header = [tables[0][0][0], *(f"{label}: {c}" for label in labels for c in columns)]
    caption = re.sub(" on (" + "|".join(data.SOURCES) + r")\b", "", caption).rstrip(".")
    caption += f": {labels[0]} and {labels[1]} side by side."
    lines = [f"**{caption}**", "", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join([name, *(cell for side in picked for cell in side.get(name, ["—"] * len(columns)))])
              + " |" for name in names]
    lines += ["", f"Columns from [{match.group('left')}]({match.group('left')}) ({labels[0]}) and "
                  f"[{match.group('right')}]({match.group('right')}) ({labels[1]}); their notes give the settings."]
    return "\n".join(lines) + "\n"


def render(readme: str, root: Path) -> str:
    """The README with every include block refilled from its file, and every side-by-side block from its two."""
    readme = BLOCK.sub(lambda m: m.group(1) + _contents(m, root) + m.group(5), readme)
    return SIDE_BY_SIDE.sub(lambda m: m.group(1) + _side_by_side(m, root) + m.group("end"), readme)


def main(argv=None) -> None:
    path = Path((argv or sys.argv[1:])[0])
    results.write_text(path, render(path.read_text(), path.parent))


if __name__ == "__main__":
    main()
