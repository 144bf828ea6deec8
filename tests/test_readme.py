"""README.md: its Colab code runs, and its tables are the ones the code wrote."""

import importlib
import re
from pathlib import Path

import pytest

from experiments import readme
from mnist_linear import models, results

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_colab_section_runs():
    section = README.split("## Use from Colab", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    accuracy = namespace["correct"] / 10_000
    assert accuracy.shape == (4,) and (accuracy > 0.9).all(), accuracy


def test_readme_tables_are_the_generated_ones():
    assert readme.BLOCK.search(README)
    assert readme.render(README, ROOT) == README


def test_committed_tables_match_their_results():
    """Every committed table.md is what its experiment renders from the committed results file."""
    files = sorted((ROOT / "results").glob("*/results.json*"))
    assert {"baseline", "translation-gpu", "ladder-gpu"} <= {f.parent.name for f in files}
    for file in files:
        folder, written = file.parent, results.read_json(file)
        module = importlib.import_module(f"experiments.{written['experiment']}")
        rendered = "\n".join(t.markdown() for t in module.make_tables(written))
        assert (folder / "table.md").read_text() == rendered, folder.name
        # One name per model in every results file, and the linear recipe recorded wherever it was tuned.
        assert {r["model"] for r in written["records"]} <= {*models.NAMES, "mean"}, folder.name
        recipes = written["linear_recipe"]  # one, or one per regression problem
        recipes = recipes.values() if written["experiment"] == "regression" else [recipes]
        assert written["preset"] in ("cpu", "gpu") and all({"learning_rate", "on_edge"} <= set(r) for r in recipes)


def test_side_by_side_blocks_copy_the_cells_of_both_tables(tmp_path):
    for name in ("locality", "locality-fashion"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "table.md").write_text((ROOT / "results" / name / "table.md").read_text())
    block = ('<!-- side by side locality/table.md locality-fashion/table.md table="Locality" columns="permuted;original" '
             'labels="A;B" caption="Both." -->\n<!-- end include -->\n')
    out = readme.render(block, tmp_path)
    rows = {line.split(" | ")[0][2:]: line.strip("| \n").split(" | ") for line in out.splitlines()
            if line.startswith("| ") and "---" not in line}
    assert rows["model"] == ["model", "A: permuted", "A: original", "B: permuted", "B: original"]
    for side, name in ((1, "locality"), (3, "locality-fashion")):
        source = [line.strip("| \n").split(" | ") for line in (tmp_path / name / "table.md").read_text().splitlines()
                  if line.startswith("| linear |")][0]
        assert rows["linear"][side:side + 2] == [source[2], source[1]]  # permuted, then original, as asked
    with pytest.raises(ValueError, match="no column"):
        readme.render(block.replace("permuted;original", "permuted;shuffled"), tmp_path)
