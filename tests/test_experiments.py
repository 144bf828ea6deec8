"""The experiments run end to end on real data in their quick settings and write every output."""

import json

import chex
import matplotlib.image
import numpy as np
import pytest
from realdata import mnist

from experiments import baseline, translation
from mnist_linear import data, results


@pytest.fixture(scope="module")
def mnist_baseline(tmp_path_factory):
    out = tmp_path_factory.mktemp("baseline")
    return out, baseline.main(["--out", str(out), "--quick"])


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
def test_baseline_quick_writes_every_output(tmp_path, dataset, request):
    if dataset == "mnist":
        out, written = request.getfixturevalue("mnist_baseline")
    else:
        out = tmp_path / "run"
        written = baseline.main(["--out", str(out), "--quick", "--dataset", dataset])
    assert sorted(p.name for p in out.iterdir()) == [
        "params.npz", "results.json", "table.md", "table.tex", "templates.png"]  # nothing half-written

    saved = json.loads((out / "results.json").read_text())
    assert saved == written
    assert saved["config"]["dataset"] == dataset and saved["config"]["seeds"] == 2
    for key in ("jax", "jaxlib", "device_kind", "git_commit"):
        assert key in saved["environment"]
    assert saved["dataset"]["md5"] == {f.filename: f.md5 for f in data.SOURCES[dataset].files}
    assert len(saved["records"]) == 2 and len(saved["tuning"]) == 4

    # The saved parameters load back and reproduce each seed's count, recomputed in numpy.
    params = results.load_params(out / "params.npz")
    chex.assert_shape(params["w"], (2, 784, 10))
    test = data.load(dataset).test if dataset != "mnist" else mnist().test
    x = test.images.reshape(len(test.labels), -1).astype(np.float64) / 255
    for record, w, b in zip(saved["records"], params["w"], params["b"]):
        assert record["test_total"] == 10_000
        assert record["test_correct"] == np.sum(np.argmax(x @ w + b, -1) == test.labels)
    accuracies = [r["test_accuracy"] for r in saved["records"]]
    np.testing.assert_allclose(saved["summary"]["test_accuracy"]["mean"], np.mean(accuracies))
    assert np.mean(accuracies) > (0.8 if dataset == "mnist" else 0.7)  # 1 epoch on 5,000 images

    table = (out / "table.md").read_text()
    assert f"{100 * np.mean(accuracies):.2f} ± {100 * np.std(accuracies, ddof=1):.2f}" in table
    assert ("LeCun et al. 1998" in table) == (dataset == "mnist")
    assert table == baseline.make_table(saved).markdown()
    assert "\\begin{tabular}" in (out / "table.tex").read_text()
    image = matplotlib.image.imread(out / "templates.png")
    assert image.ndim == 3 and image.shape[1] > image.shape[0] > 100


def test_translation_quick_writes_every_output_and_agrees_with_the_baseline(tmp_path, mnist_baseline):
    out = tmp_path / "translation"
    written = translation.main(["--out", str(out), "--quick"])
    variants = ["linear", "linear_tta", "linear_shift_aug", "linear_shift_aug_tta"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["results.json", "table.md", "table.tex", "templates_shift_augmented.png", "train_test_matrix.png"]
        + [f"grid_{v}_{fill}.png" for v in variants for fill in ("zeros", "wrap")])
    assert json.loads((out / "results.json").read_text()) == written
    for phase in ("linear: training", "linear: shift grid, zeros", "train-shift matrix: training"):
        assert set(written["timing"][phase]) == {"compile_s", "run_s"}

    grid = [r for r in written["records"] if r["kind"] == "grid" and r["model"] == "linear"]
    assert len(grid) == 2 * 2 * 49  # seeds × fills × offsets
    assert set(grid[0]) == {"kind", "model", "seed", "train_dx", "train_dy", "test_dx", "test_dy", "fill", "accuracy"}
    # The (0, 0) column is the baseline's accuracy: same recipe, same seeds, same config.
    _, base = mnist_baseline
    for fill in ("zeros", "wrap"):
        centre = [r["accuracy"] for r in grid if r["fill"] == fill and r["test_dx"] == r["test_dy"] == 0]
        assert centre == [r["test_accuracy"] for r in base["records"]]
    at = lambda dx, dy: np.mean([r["accuracy"] for r in grid if r["fill"] == "zeros"  # noqa: E731
                                 and (r["test_dx"], r["test_dy"]) == (dx, dy)])
    assert at(0, 0) > at(1, 0) > at(2, 0) > at(3, 0) and at(3, 3) < 0.3

    matrix = [r for r in written["records"] if r["kind"] == "matrix"]
    assert len(matrix) == 7 * 1 * 49  # train offsets × seeds × test offsets
    # Trained at +3 px, the model is best when tested at +3 px: the diagonal band.
    row = {r["test_dx"]: r["accuracy"] for r in matrix if r["train_dx"] == 3 and r["test_dy"] == 0}
    assert max(row, key=row.get) == 3
    metrics = {(r["model"], r["metric"]) for r in written["records"] if r["kind"] == "metric"}
    assert ("linear + shift aug.", "consistency") in metrics and len(metrics) == 4 * 4

    assert (out / "table.md").read_text() == "\n".join(t.markdown() for t in translation.make_tables(written))
