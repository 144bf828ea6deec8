"""The experiments run end to end on real data in their quick settings and write every output."""

import json

import chex
import matplotlib.image
import numpy as np
import pytest
from realdata import mnist

from experiments import baseline
from mnist_linear import data, results


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
def test_baseline_quick_writes_every_output(tmp_path, dataset):
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
