"""The experiments run end to end on real data in their quick settings and write every output."""

import json

import chex
import jax
import matplotlib.image
import numpy as np
import pytest
import scipy.stats
from realdata import mnist
from test_transforms import _mnist_c_reference, _np_translate, _skimage_rotate_translate

from experiments import baseline, ladder, locality, regression, resolution, spatial, templates, translation
from mnist_linear import data, regression as problems, results, transforms


@pytest.fixture(scope="module")
def mnist_baseline(tmp_path_factory):
    out = tmp_path_factory.mktemp("baseline")
    return out, baseline.main(["--out", str(out), "--quick"])


# Tests that train the same quick programs share a worker (`--dist loadgroup`), so the later ones
# find them in JAX's compilation cache: the baseline's linear recipe recurs in translation and spatial.
@pytest.mark.xdist_group("baseline")
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
    assert all(r["failed"] is None for r in saved["records"])
    assert np.mean(accuracies) > (0.8 if dataset == "mnist" else 0.7)  # 1 epoch on 5,000 images

    table = (out / "table.md").read_text()
    assert f"{100 * np.mean(accuracies):.2f} ± {100 * np.std(accuracies, ddof=1):.2f}" in table
    assert ("LeCun et al. 1998" in table) == (dataset == "mnist")
    assert table == baseline.make_tables(saved)[0].markdown()
    assert "\\begin{tabular}" in (out / "table.tex").read_text()
    image = matplotlib.image.imread(out / "templates.png")
    assert image.ndim == 3 and image.shape[1] > image.shape[0] > 100


@pytest.mark.xdist_group("baseline")
def test_translation_quick_writes_every_output_and_agrees_with_the_baseline(tmp_path, mnist_baseline):
    out = tmp_path / "translation"
    written = translation.main(["--out", str(out), "--quick"])
    variants = ["linear", "linear_tta", "linear_shift_aug", "linear_shift_aug_tta", "cnn_small",
                "cnn_small_shift_aug"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["results.json.gz", "table.md", "table.tex", "templates_shift_augmented.png", "train_test_matrix_linear.png"]
        + [f"grid_{v}_{fill}.png" for v in variants for fill in ("zeros", "wrap")])
    assert results.read_json(out / "results.json.gz") == written
    assert written["preset"] == "quick" and set(written["linear_recipe"]) >= {"learning_rate", "on_edge"}
    for phase in ("linear: training", "linear: evaluation", "linear + shift aug. + TTA: evaluation",
                  "cnn_small + shift aug.: evaluation", "linear: train-shift matrix, training"):
        assert set(written["timing"][phase]) == {"compile_s", "run_s"}

    grid = results.select(written["records"], kind="grid", model="linear", augment="none", tta=False)
    assert len(grid) == 2 * 2 * 49  # seeds × fills × offsets
    assert set(grid[0]) == {"kind", "model", "augment", "tta", "seed", "test_dx", "test_dy", "fill", "accuracy",
                            "failed"}
    # The (0, 0) column is the baseline's accuracy: same recipe, same seeds, same config. The quick
    # run scores the first 500 test images, so recount the baseline's saved models on those in numpy.
    base_out, _ = mnist_baseline
    params = results.load_params(base_out / "params.npz")
    test = mnist().test
    x = test.images[:500].reshape(500, -1).astype(np.float64) / 255
    base = [np.mean(np.argmax(x @ w + b, -1) == test.labels[:500]) for w, b in zip(params["w"], params["b"])]
    assert written["test_images"] == 500
    for fill in ("zeros", "wrap"):
        centre = [r["accuracy"] for r in grid if r["fill"] == fill and r["test_dx"] == r["test_dy"] == 0]
        np.testing.assert_allclose(centre, base, atol=1e-9)
    at = lambda dx, dy: np.mean([r["accuracy"] for r in grid if r["fill"] == "zeros"  # noqa: E731
                                 and (r["test_dx"], r["test_dy"]) == (dx, dy)])
    assert at(0, 0) > at(1, 0) > at(2, 0) > at(3, 0) and at(3, 3) < 0.3

    matrix = [r for r in written["records"] if r["kind"] == "matrix" and r["model"] == "linear"]
    assert len(matrix) == 7 * 1 * 49  # train offsets × seeds × test offsets
    # Trained at +3 px, the model is best when tested at +3 px: the diagonal band.
    row = {r["test_dx"]: r["accuracy"] for r in matrix if r["train_dx"] == 3 and r["test_dy"] == 0}
    assert max(row, key=row.get) == 3
    metrics = {(r["model"], r["augment"], r["tta"], r["metric"]) for r in results.select(written["records"],
                                                                                          kind="metric")}
    assert ("linear", "shift", False, "consistency") in metrics and ("cnn_small", "none", False, "consistency") in metrics
    assert len(metrics) == 6 * 4  # four linear variants and two CNN ones, four metrics each
    # Consistency recounted in numpy from the baseline's saved models (the same recipe and seeds) and the
    # two draws the docstring names: key(seed) folded with 2, split in two, offsets in [-3, 3]².
    draws = [transforms.random_offsets(k, 500, 3) for k in jax.random.split(jax.random.fold_in(jax.random.key(0), 2))]
    predicted = [[np.argmax(np.stack([_np_translate(im, int(i), int(j), "zeros") for im, i, j in
                                      zip(test.images[:500].astype(np.float64) / 255, *d)]).reshape(500, -1) @ w + b, -1)
                  for d in draws] for w, b in zip(params["w"], params["b"])]
    consistency = [r["value"] for r in results.select(written["records"], kind="metric", model="linear",
                                                      augment="none", tta=False, metric="consistency")]
    np.testing.assert_allclose(consistency, [np.mean(a == b) for a, b in predicted], atol=2 / 500)

    table = (out / "table.md").read_text()
    assert table == "\n".join(t.markdown() for t in translation.make_tables(written))
    # The robustness table's "2 px" cell of the linear model: per seed, the mean over the four 2-px axis shifts.
    two_px = [np.mean([r["accuracy"] for r in grid if r["fill"] == "zeros" and r["seed"] == s
                       and (abs(r["test_dx"]), abs(r["test_dy"])) in ((2, 0), (0, 2))]) for s in (0, 1)]
    row = next(line for line in table.splitlines() if line.startswith("| linear | 2 |"))
    assert row.split(" | ")[4] == f"{100 * np.mean(two_px):.1f} ± {100 * np.std(two_px, ddof=1):.1f}"
    assert "small CNN (LeNet-5 layout) + shift aug." in table  # one name per model, its title in tables


@pytest.mark.xdist_group("baseline")
def test_spatial_quick_recounts_in_numpy_and_scikit_image(tmp_path, mnist_baseline):
    out = tmp_path / "spatial"
    written = spatial.main(["--out", str(out), "--quick"])
    assert _outputs(out) == ["examples.png", "results.json", "severity.png", "table.md", "table.tex"]
    _tables_match(out, spatial.make_tables(written))
    records, n = written["records"], written["test_images"]
    assert n == 200 and written["grid_images"] == 50
    variants = {(r["model"], r["preprocess"], r["augment"]) for r in records}
    assert len(variants) == 12 and ("linear", "deskewing", "none") in variants
    assert ("cnn_small", "none", "rotate_translate") in variants and ("cnn_large", "none", "none") in variants
    corrupted = results.select(records, kind="corruption", **spatial.PLAIN_LINEAR)
    assert len(corrupted) == 2 * (1 + 4 * 5)  # seeds × (clean + corruptions × severities)

    # The linear model is the baseline's (same recipe, seeds and config): recount it in numpy on the same
    # images, clean, under MNIST-C's rotate at severity 3 by scikit-image with the draws the docstring
    # names, and under 10 random rotations and translations (Engstrom et al.) the same way.
    params = results.load_params(mnist_baseline[0] / "params.npz")
    test = mnist().test
    images, labels = test.images[:n].astype(np.float64) / 255, test.labels[:n]
    key = jax.random.fold_in(jax.random.key(0), 3)

    def accuracy(x):
        return np.array([np.mean(np.argmax(x.reshape(n, -1) @ w + b, -1) == labels)
                         for w, b in zip(params["w"], params["b"])])

    def recorded(**kw):
        return [r["accuracy"] for r in results.select(records, **spatial.PLAIN_LINEAR, **kw)]

    np.testing.assert_allclose(recorded(kind="corruption", corruption="clean"), accuracy(images), atol=1e-9)
    degrees = np.asarray(transforms.mnist_c_params(jax.random.fold_in(key, 3), n, "rotate", 3)[0])
    rotated = np.stack([_mnist_c_reference(im, "rotate", np.radians(d)) for im, d in zip(images, degrees)])
    np.testing.assert_allclose(recorded(kind="corruption", corruption="rotate", severity=3), accuracy(rotated),
                               atol=1 / n + 1e-9)
    draws = np.asarray(transforms.random_spatial(jax.random.fold_in(key, 100), 10, n, 3.0, 30.0))
    correct_everywhere = np.ones((2, n), bool)
    for t in range(10):
        x = np.stack([_skimage_rotate_translate(im, *draws[:, t, i]) for i, im in enumerate(images)])
        correct_everywhere &= np.stack([np.argmax(x.reshape(n, -1) @ w + b, -1) == labels
                                        for w, b in zip(params["w"], params["b"])])
    np.testing.assert_allclose(recorded(kind="worst_case", attack="random"), correct_everywhere.mean(-1),
                               atol=2 / n + 1e-9)
    # The exhaustive grid (3 × 3 × 5 in the quick preset) on the first 50 images, by scikit-image.
    grid_correct = np.ones((2, 50), bool)
    for point in zip(*transforms.spatial_grid(3.0, 30.0, (3, 3, 5))):
        x = np.stack([_skimage_rotate_translate(im, *point) for im in images[:50]])
        grid_correct &= np.stack([np.argmax(x.reshape(50, -1) @ w + b, -1) == labels[:50]
                                  for w, b in zip(params["w"], params["b"])])
    np.testing.assert_allclose(recorded(kind="worst_case", attack="grid"), grid_correct.mean(-1), atol=1 / 50 + 1e-9)

    # MNIST-C's translate and the shift grid's corners agree on every image, for every model.
    checks = results.select(records, kind="translate_check")
    assert len(checks) == 5 * (6 * 2 + 6 * 1) and all(r["agreement"] == 1.0 for r in checks)
    for r in results.select(records, kind="worst_case", attack="grid"):  # worst over the grid ≤ its clean point
        clean = results.select(records, kind="worst_case", attack="grid_clean", seed=r["seed"],
                               **{k: r[k] for k in spatial.VARIANT})
        assert r["accuracy"] <= clean[0]["accuracy"]
    # Centring undoes whole-pixel shifts: under translate by 1 or 2 px it keeps its clean accuracy
    # up to the few digits that lose ink over the edge.
    centred = lambda **kw: np.mean([r["accuracy"] for r in results.select(  # noqa: E731
        records, kind="corruption", model="linear", preprocess="centring", augment="none", **kw)])
    for c in (1, 2):
        assert abs(centred(corruption="translate", severity=c) - centred(corruption="clean")) <= 0.02
    table = (out / "table.md").read_text()
    assert "LeCun et al. 1998: linear classifier, deskewed†" in table and "rotation/translation aug." in table


def _outputs(out):
    return sorted(p.name for p in out.iterdir())


def _tables_match(out, table_list):
    assert (out / "table.md").read_text() == "\n".join(t.markdown() for t in table_list)


@pytest.mark.xdist_group("ladder")  # with test_contracts' failing ladder: the same programs
def test_ladder_quick(tmp_path):
    out = tmp_path / "ladder"
    written = ladder.main(["--out", str(out), "--quick"])
    assert _outputs(out) == ["ladder.png", "results.json", "table.md", "table.tex"]
    steps = [r for r in written["records"] if r["kind"] == "ladder"]
    assert [r["model"] for r in steps] == ["linear"] * 2 + ["mlp"] * 2 + ["cnn_small"] * 2 + ["cnn_large"] * 2
    assert {r["model"]: r["parameters"] for r in steps}["cnn_small"] == 61_706
    small = [r for r in written["records"] if r["kind"] == "small_data"]
    assert {r["model"] for r in small} == {"linear", "cnn_small", "cnn_large"}
    # Welch's test as scipy computes it, on the recorded per-seed accuracies.
    for row in ladder.significance(written):
        previous = {"mlp": "linear", "cnn_small": "mlp", "cnn_large": "cnn_small"}[row["model"]]
        a = [r["test_accuracy"] for r in steps if r["model"] == previous]
        b = [r["test_accuracy"] for r in steps if r["model"] == row["model"]]
        assert np.isclose(row["p_value"], scipy.stats.ttest_ind(b, a, equal_var=False).pvalue)
    table = (out / "table.md").read_text()
    assert "LeCun et al. 1998: LeNet-5" in table and "Welch" in table
    linear = [r["test_accuracy"] for r in steps if r["model"] == "linear"]
    assert f"| linear | 7,850 | {100 * np.mean(linear):.2f} ± {100 * np.std(linear, ddof=1):.2f} |" in table
    _tables_match(out, ladder.make_tables(written))


def test_locality_quick(tmp_path):
    out = tmp_path / "locality"
    written = locality.main(["--out", str(out), "--quick"])
    assert _outputs(out) == ["permuted_digits.png", "results.json", "table.md", "table.tex"]
    permutation = np.array(written["permutation"])
    assert sorted(permutation) == list(range(784)) and (permutation != np.arange(784)).any()
    accuracy = lambda model, pixels: [r["test_accuracy"] for r in written["records"]  # noqa: E731
                                      if r["model"] == model and r["pixels"] == pixels]
    for model in ("linear", "mlp"):
        # Equivalent computations: at most a few predictions out of 10,000 may flip through summation order.
        assert locality._most_differing(written["closeness"][model]) <= 5
        assert np.allclose(accuracy(model, "original"), accuracy(model, "permuted"), atol=5e-4)
        assert written["closeness"][model]["max_abs_parameter_difference"] < 1e-4
    assert np.mean(accuracy("cnn_small", "permuted")) < np.mean(accuracy("cnn_small", "original"))
    _tables_match(out, locality.make_tables(written))


def test_templates_quick(tmp_path):
    out = tmp_path / "templates"
    written = templates.main(["--out", str(out), "--quick"])
    assert _outputs(out) == ["figure_params.npz", "results.json", "table.md", "table.tex", "templates_k.png"]
    assert {(r["k"], r["reduce"]) for r in written["records"]} == {(k, red) for k in (1, 4)
                                                                  for red in ("logsumexp", "max")}
    assert {r["k"]: r["parameters"] for r in written["records"]} == {1: 7850, 4: 31_400}
    # k = 1 is the linear model whatever the reduction: the two runs are the same computation.
    one = lambda red: [r["test_accuracy"] for r in written["records"] if r["k"] == 1 and r["reduce"] == red]  # noqa: E731
    assert one("logsumexp") == one("max")
    usage = np.array(written["template_usage"])
    chex.assert_shape(usage, (10, 4))
    np.testing.assert_allclose(usage.sum(-1), 1.0)
    _tables_match(out, templates.make_tables(written))


def test_resolution_quick(tmp_path):
    out = tmp_path / "resolution"
    written = resolution.main(["--out", str(out), "--quick"])
    assert _outputs(out) == ["accuracy.png", "parameters.png", "results.json", "table.md", "table.tex"]
    params = {(r["model"], r["image_size"]): r["parameters"] for r in written["records"]}
    assert params[("linear", 28)] == 7850 and params[("linear", 56)] == 56 * 56 * 10 + 10
    assert params[("cnn_gap", 28)] == params[("cnn_gap", 56)]
    rates = {(r["model"], r["image_size"]): r["learning_rate"] for r in written["records"]}
    assert np.isclose(rates[("linear", 56)], rates[("linear", 28)] / 4)
    linear_56 = [r["test_accuracy"] for r in written["records"] if r["model"] == "linear" and r["image_size"] == 56]
    assert np.mean(linear_56) > 0.8
    _tables_match(out, resolution.make_tables(written))


def test_regression_quick(tmp_path):
    out = tmp_path / "regression"
    written = regression.main(["--out", str(out), "--quick"])
    assert _outputs(out) == ["results.json", "scatter-keypoint.png", "scatter-morphometry.png", "scatter-quality.png",
                             "shift.png", "table.md", "table.tex", "templates-keypoint.png",
                             "templates-morphometry.png", "templates-quality.png"]
    records, config = written["records"], written["config"]
    tested = [r for r in records if r["kind"] == "test"]
    assert {(r["problem"], r["target"]) for r in tested} == {
        ("keypoint", "x"), ("keypoint", "y"), ("quality", "score"), ("morphometry", "thickness"),
        ("morphometry", "slant")}
    # The mean predictor's scores, recomputed from the targets (the same key makes the same test set).
    test = data.load("mnist").test
    test = data.Split(test.images[: config["test_examples"]], test.labels[: config["test_examples"]])
    made = problems.keypoints(jax.random.fold_in(jax.random.fold_in(jax.random.key(0), 100), 1), test)
    y = np.asarray(made.targets, np.float64)
    mean = np.array(written["standardisation"]["keypoint"]["mean"])
    for t, target in enumerate("xy"):
        record = next(r for r in tested if r["model"] == "mean" and r["problem"] == "keypoint" and r["target"] == target)
        assert np.isclose(record["mae"], np.abs(y[:, t] - mean[t]).mean())
        assert np.isclose(record["r2"], 1 - ((y[:, t] - mean[t]) ** 2).sum() / ((y[:, t] - y[:, t].mean()) ** 2).sum())
    # Learning from the images beats the mean on every target, for the linear regressor.
    for problem, target in {(r["problem"], r["target"]) for r in tested}:
        r2 = lambda model: np.mean([r["r2"] for r in tested if (r["problem"], r["target"], r["model"]) ==  # noqa: E731
                                    (problem, target, model) and not r["failed"]])
        assert r2("linear") > r2("mean") + 0.3, (problem, target)
    shifted = [r for r in records if r["kind"] == "shift"]
    assert {r["problem"] for r in shifted} == {"quality", "morphometry"}
    assert {(r["dx"], r["dy"]) for r in shifted} == {(d, 0) for d in range(-2, 3)} | {(0, d) for d in range(-2, 3)}
    at_zero = {(r["problem"], r["target"], r["model"], r["seed"]): r["r2"] for r in shifted if r["dx"] == r["dy"] == 0}
    for r in tested:  # the unshifted point of the grid sweep is the test set's score
        if (r["problem"], r["target"], r["model"], r["seed"]) in at_zero:
            assert np.isclose(at_zero[(r["problem"], r["target"], r["model"], r["seed"])], r["r2"], atol=1e-5)
    for problem, target in {(r["problem"], r["target"]) for r in shifted}:  # a shifted digit fools the linear model
        r2 = lambda d: np.mean([r["r2"] for r in shifted if (r["problem"], r["target"], r["model"]) ==  # noqa: E731
                                (problem, target, "linear") and max(abs(r["dx"]), abs(r["dy"])) == d])
        assert r2(2) < r2(0), (problem, target)
    _tables_match(out, regression.make_tables(written))


def test_regression_refuses_morphometry_without_strokes(tmp_path, capsys):
    with pytest.raises(SystemExit):
        regression.main(["--out", str(tmp_path / "r"), "--quick", "--dataset", "fashion_mnist"])
    assert "--problems keypoint quality" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
