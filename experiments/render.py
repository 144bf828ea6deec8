"""Re-renders tables and figures from results files alone, without training anything.

Run: python -m experiments.render results/translation-gpu [more folders...]

Each folder's results.json (or results.json.gz) names its experiment; that
experiment's `make_tables` and `write_figures` write table.md, table.tex and
the figures again, so a change of wording or layout reaches committed results.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from mnist_linear import experiment, results


def render(folder: Path) -> None:
    """Rewrites `folder`'s tables and figures from its results file. Raises FileNotFoundError without one."""
    files = sorted(folder.glob("results.json*"))
    if len(files) != 1:
        raise FileNotFoundError(f"{folder} holds {len(files)} results files, not 1.")
    written = results.read_json(files[0])
    module = importlib.import_module(f"experiments.{written['experiment']}")
    experiment.write_tables(folder, module.make_tables(written))
    if hasattr(module, "write_figures"):
        module.write_figures(written, folder)


def main(argv=None) -> None:
    for folder in argv if argv is not None else sys.argv[1:]:
        render(Path(folder))


if __name__ == "__main__":
    main()
