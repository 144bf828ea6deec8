"""README.md: its Colab code runs, and its tables are the ones the code wrote."""

import importlib
import re
from pathlib import Path

import numpy as np
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
    """Every committed table.md (results/ and results/quick/) is what its experiment renders from its results file."""
    files = sorted([*(ROOT / "results").glob("*/results.json*"), *(ROOT / "results" / "quick").glob("*/results.json*")])
    assert {"baseline", "translation-gpu", "ladder-gpu", "quick/spatial"} <= {
        str(f.parent.relative_to(ROOT / "results")) for f in files}
    for file in files:
        folder, written = file.parent, results.read_json(file)
        module = importlib.import_module(f"experiments.{written['experiment']}")
        rendered = "\n".join(t.markdown() for t in module.make_tables(written))
        assert (folder / "table.md").read_text() == rendered, folder.name
        # One name per model in every results file, and the linear recipe recorded wherever it was tuned.
        assert {r["model"] for r in written["records"]} <= {*models.NAMES, "mean"}, folder.name
        recipes = written["linear_recipe"]  # one, or one per regression problem
        recipes = recipes.values() if written["experiment"] == "regression" else [recipes]
        preset = "quick" if folder.parent.name == "quick" else written["preset"]
        assert written["preset"] == preset in ("cpu", "gpu", "quick") and all({"learning_rate", "on_edge"} <= set(r) for r in recipes)


def test_side_by_side_blocks_copy_the_cells_of_both_tables(tmp_path):
    for name in ("locality", "locality-fashion"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "table.md").write_text((ROOT / "results" / name / "table.md").read_text())
    block = ('<!-- side by side locality/table.md locality-fashion/table.md table="Locality" columns="permuted;original" '
             'labels="A;B" -->\n<!-- end include -->\n')
    out = readme.render(block, tmp_path)
    rows = {line.split(" | ")[0][2:]: line.strip("| \n").split(" | ") for line in out.splitlines()
            if line.startswith("| ") and "---" not in line}
    assert rows["model"] == ["model", "A: permuted", "A: original", "B: permuted", "B: original"]
    for side, name in ((1, "locality"), (3, "locality-fashion")):
        source = [line.strip("| \n").split(" | ") for line in (tmp_path / name / "table.md").read_text().splitlines()
                  if line.startswith("| linear |")][0]
        assert rows["linear"][side:side + 2] == [source[2], source[1]]  # permuted, then original, as asked
    assert out.splitlines()[1].startswith("**Locality: test accuracy (%)") and out.splitlines()[1].endswith(
        "seeds: A and B side by side.**") and " on mnist" not in out
    with pytest.raises(ValueError, match="two labels"):
        readme.render(block.replace('labels="A;B"', 'labels="A"'), tmp_path)
    with pytest.raises(ValueError, match="no column"):
        readme.render(block.replace("permuted;original", "permuted;shuffled"), tmp_path)


def test_spatial_translate_agrees_with_the_translation_experiment():
    """The same linear models (same recipe, seeds and data) in two experiments: MNIST-C's translate at
    severity c against the mean over the four (±c, ±c) cells of the translation experiment's shift grid."""
    spatial = results.read_json(ROOT / "results" / "spatial" / "results.json")
    shifts = results.read_json(ROOT / "results" / "translation" / "results.json.gz")
    assert spatial["linear_recipe"]["learning_rate"] == shifts["linear_recipe"]["learning_rate"]
    grid = results.select(shifts["records"], kind="grid", model="linear", augment="none", tta=False, fill="zeros")
    for c in (1, 2, 3):
        corner = results.per_seed(spatial["records"], "corner_accuracy", kind="translate_check", model="linear",
                                  preprocess="none", augment="none", severity=c)
        diagonal = results.per_seed(grid, "accuracy", lambda r: abs(r["test_dx"]) == abs(r["test_dy"]) == c)
        assert len(corner) == spatial["config"]["seeds"]
        np.testing.assert_allclose(corner, diagonal[: len(corner)], atol=1e-12)
