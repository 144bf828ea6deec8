"""The results schema: querying records, saving parameters, and the import rules of ARCHITECTURE.md."""

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mnist_linear import results

ROOT = Path(__file__).resolve().parents[1]
RECORDS = [
    {"model": "linear", "seed": 0, "dx": 1, "accuracy": 0.50, "failed": None},
    {"model": "linear", "seed": 0, "dx": -1, "accuracy": 0.70, "failed": None},
    {"model": "linear", "seed": 1, "dx": 1, "accuracy": 0.40, "failed": None},
    {"model": "linear", "seed": 1, "dx": -1, "accuracy": 0.60, "failed": None},
    {"model": "linear", "seed": 2, "dx": 1, "accuracy": 0.10, "failed": "loss or parameters became inf or nan"},
    {"model": "mlp", "seed": 0, "dx": 1, "accuracy": 0.90, "failed": None},
]


def test_select_and_per_seed():
    assert results.select(RECORDS, model="mlp") == [RECORDS[5]]
    assert results.select(RECORDS, lambda r: abs(r["dx"]) == 1 and r["seed"] == 1, model="linear") == RECORDS[2:4]
    # Per seed: the mean over the matching records of that seed; the failed seed 2 is left out.
    np.testing.assert_allclose(results.per_seed(RECORDS, "accuracy", model="linear"), [0.6, 0.5])
    np.testing.assert_allclose(results.per_seed(RECORDS, "accuracy", model="linear", dx=1), [0.5, 0.4])
    assert results.per_seed(RECORDS, "accuracy", model="cnn_small").shape == (0,)
    with pytest.raises(KeyError, match="no field 'fill'"):
        results.select(RECORDS, fill="zeros")


def test_seed_records_index_arrays_by_seed():
    records = results.seed_records(np.array(["", "stuck"]), model="linear", accuracy=np.array([0.9, 0.1]), k=3)
    assert records == [{"seed": 0, "model": "linear", "accuracy": 0.9, "k": 3, "failed": None},
                       {"seed": 1, "model": "linear", "accuracy": 0.1, "k": 3, "failed": "stuck"}]
    assert results.failed(records) == records[1:]
    assert results.all_failed(records + [{"model": "mlp", "seed": 0, "k": 3, "failed": "stuck"}]) == [("mlp",)]
    assert results.all_failed(records, ("model", "seed")) == [("linear", 1)]


def test_parameters_load_back(tmp_path):
    params = {"Dense_0": {"kernel": np.arange(6.0).reshape(2, 3), "bias": np.ones(3)}, "w": np.zeros((2, 2))}
    results.save_params(tmp_path / "p.npz", params)
    back = results.load_params(tmp_path / "p.npz")
    assert set(back) == {"Dense_0", "w"}
    np.testing.assert_array_equal(back["Dense_0"]["kernel"], params["Dense_0"]["kernel"])


def test_json_round_trip_gzipped_and_deterministic(tmp_path):
    obj = {"records": RECORDS, "array": np.arange(3), "scalar": np.float32(0.5)}
    results.write_json(tmp_path / "a.json.gz", obj)
    first = (tmp_path / "a.json.gz").read_bytes()
    results.write_json(tmp_path / "a.json.gz", obj)
    assert (tmp_path / "a.json.gz").read_bytes() == first
    assert results.read_json(tmp_path / "a.json.gz")["array"] == [0, 1, 2]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


def test_import_rules_of_the_architecture():
    library = {p.stem: _imports(p) for p in (ROOT / "mnist_linear").glob("*.py")}
    for name, imports in library.items():
        assert not any(i.startswith("experiments") for i in imports), f"{name} imports an experiment"
    for name in ("results", "tables", "stats", "plots", "phases"):
        assert not any(i.split(".")[0] in ("jax", "flax", "optax") for i in library[name]), f"{name} imports jax"
    for name in ("linear", "models", "metrics", "transforms", "regression", "invariance"):
        banned = {"mnist_linear.train", "mnist_linear.tuning", "mnist_linear.experiment", "mnist_linear.evaluate"}
        assert not library[name] & banned, f"{name} imports {library[name] & banned}"
    assert not any(i.startswith("mnist_linear") for i in library["sharding"]), "sharding imports the library"
    assert {i for i in library["compiling"] if i.startswith("mnist_linear")} <= {"mnist_linear", "mnist_linear.data"}
    assert {i for i in library["phases"] if i.startswith("mnist_linear")} <= {"mnist_linear", "mnist_linear.results"}
    # A script imports the library, never another script; render.py loads them by name, on purpose.
    for path in (ROOT / "experiments").glob("*.py"):
        assert not any(i.startswith("experiments") for i in _imports(path)), f"{path.name} imports a script"
    assert all("importlib" in _imports(ROOT / "experiments" / f"{name}.py") for name in ("render", "reproduce"))
    # And at run time: loading results, tables and plots loads no jax.
    code = "import sys, mnist_linear.results, mnist_linear.tables, mnist_linear.plots; print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"
