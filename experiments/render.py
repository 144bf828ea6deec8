"""Re-renders tables, and the figures drawn from results alone, from results files, without training anything.

Run: python -m experiments.render results/translation-gpu [more folders...]

Each folder's results.json (or results.json.gz) names its experiment; that
experiment's `make_tables` writes table.md and table.tex again and its `write_figures`, where it has
one, the figures made from the file, so a change of wording or layout reaches committed results.
Figures of trained parameters (templates, example digits, scatter plots) are drawn by the run alone:
the parameters they need are not committed.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from mnist_linear import experiment, results


def render(folder: Path) -> None:
    """Rewrites `folder`'s tables, and the figures its experiment's `write_figures` draws, from its results file.
    Raises FileNotFoundError without one."""
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
