"""Copies generated tables into README.md, so its numbers are the code's, never retyped.

Run: python -m experiments.readme README.md

A block in the README looks like

    <!-- include results/baseline/table.md -->
    ...replaced by the file's contents...
    <!-- end include -->
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from mnist_linear import results

BLOCK = re.compile(r"(<!-- include (?P<path>\S+) -->\n)(?P<body>.*?)(<!-- end include -->)", re.DOTALL)


def render(readme: str, root: Path) -> str:
    """The README with every include block refilled from its file."""
    return BLOCK.sub(lambda m: m.group(1) + (root / m.group("path")).read_text() + m.group(4), readme)


def main(argv=None) -> None:
    path = Path((argv or sys.argv[1:])[0])
    results.write_text(path, render(path.read_text(), path.parent))


if __name__ == "__main__":
    main()
