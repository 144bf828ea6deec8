"""notebooks/quickstart.ipynb runs, on the real data and a small workload, so it cannot rot."""

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import nbclient
import nbformat
import pytest
from packaging.requirements import Requirement

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"


def _text(cell) -> str:
    return "".join(output.get("text", "") for output in cell.get("outputs", []))


@pytest.mark.xdist_group("notebook")
def test_the_quickstart_runs_and_its_numbers_agree(tmp_path, monkeypatch):
    monkeypatch.setenv("QUICKSTART_TRAIN_EXAMPLES", "5000")
    monkeypatch.setenv("QUICKSTART_EPOCHS", "1")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()  # raises on any error
    printed = "\n".join(_text(cell) for cell in notebook.cells if cell.cell_type == "code")

    accuracy = [float(a) for a in re.search(r"test accuracy per seed \(%\): \[([^\]]+)\]", printed).group(1).split()]
    assert len(accuracy) == 4 and min(accuracy) > 85, accuracy  # 5,000 images, 1 epoch: about 88 %
    assert "agree with seed 0's on 100.00 %" in printed  # numpy's x @ W + b, the independent reference
    unshifted, right, corner = map(float, re.search(
        r"unshifted ([\d.]+) %, one pixel right ([\d.]+) %, three pixels diagonally ([\d.]+) %", printed).groups())
    assert unshifted == pytest.approx(sum(accuracy) / 4, abs=0.051)  # the (0, 0) cell is the test set itself
    assert corner < right < unshifted
    for target in ("x", "y"):
        mae, r2 = map(float, re.search(rf"{target}: MAE ([\d.]+) px, R² ([-\d.]+)", printed).groups())
        assert mae < 2 and r2 > 0.8, (target, mae, r2)
    assert {"templates.png", "shifts.png"} <= {p.name for p in tmp_path.iterdir()}
    pictures = [o for c in notebook.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(pictures) == 2


def test_installing_the_package_gives_everything_the_notebook_imports():
    """Each module the notebook imports is the standard library's, ours, or from a distribution that
    `pip install mnist-linear` installs (its requirements, followed); IPython comes with the notebook's kernel."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    imported = set()
    for cell in notebook.cells:
        if cell.cell_type == "code":
            for node in ast.walk(ast.parse(cell.source)):
                if isinstance(node, ast.Import):
                    imported |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom):
                    imported.add(node.module.split(".")[0])
    installed, todo = set(), ["mnist-linear"]
    while todo:
        name = todo.pop()
        if name in installed:
            continue
        installed.add(name)
        for spec in importlib.metadata.requires(name) or ():
            requirement = Requirement(spec)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name.lower().replace("_", "-"))
    providers = importlib.metadata.packages_distributions()
    missing = {module for module in imported - set(sys.stdlib_module_names) - {"mnist_linear", "IPython"}
               if not {d.lower().replace("_", "-") for d in providers.get(module, [])} & installed}
    assert not missing, f"the notebook imports {missing}, which installing the package does not bring"
    assert {"jax", "numpy", "mnist_linear"} <= imported


def test_the_notebooks_rates_are_the_tuned_ones_of_the_committed_results():
    """The notebook types the baseline's and the keypoint head's learning rate and decay: they must be the points
    the committed cpu runs chose on validation."""
    from mnist_linear import results

    source = "\n".join(cell.source for cell in nbformat.read(NOTEBOOK, as_version=4).cells)
    typed = [tuple(map(float, m)) for m in
             re.findall(r"Hyperparams\(learning_rate=([\d.e-]+), weight_decay=([\d.e-]+)\)", source)]
    root = NOTEBOOK.parents[1] / "results"
    baseline = results.read_json(root / "baseline" / "results.json")["linear_recipe"]
    keypoint = results.read_json(root / "regression" / "results.json")["linear_recipe"]["keypoint"]
    assert typed == [(r["learning_rate"], r["weight_decay"]) for r in (baseline, keypoint)]
