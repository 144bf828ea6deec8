"""Each experiment's reading (the sentences above its tables in REPORT.md): made from its results file alone,
its numbers those of the raw records recomputed here with numpy, its comparative words chosen by them."""

import copy
import functools
import importlib
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from experiments import baseline, ladder, locality, regression, resolution, spatial, templates, translation
from mnist_linear import results, tables

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = sorted(p.parent.name for p in (ROOT / "results").glob("*/results.json*"))
MODULES = {m.__name__.rsplit(".", 1)[1]: m for m in (baseline, ladder, locality, regression, resolution, spatial,
                                                      templates, translation)}


@functools.cache
def _read(folder: str) -> dict:
    return results.read_json(next((ROOT / "results" / folder).glob("results.json*")))


def committed(folder: str) -> dict:
    """A results folder's file, a copy the test may edit."""
    return copy.deepcopy(_read(folder))


def reading(written: dict) -> str:
    return " ".join(importlib.import_module(f"experiments.{written['experiment']}").reading(written))


def kept(records, key, where=lambda r: True, **equal) -> np.ndarray:
    """`key` per seed (the mean over the seed's matching records), failed runs left out, by hand."""
    by_seed = {}
    for r in records:
        if all(r.get(k) == v for k, v in equal.items()) and where(r) and not r.get("failed"):
            by_seed.setdefault(r["seed"], []).append(r[key])
    return np.array([np.mean(by_seed[s]) for s in sorted(by_seed)])


def mean_std(values, scale=100.0, digits=2) -> str:
    std = np.std(values, ddof=1) if len(values) > 1 else 0.0
    return f"{scale * np.mean(values):.{digits}f} ± {scale * std:.{digits}f}"


def moved(before, after, up="rises by", down="falls by", digits=2, scale=100.0) -> str:
    """'falls by 3.38', say: the word chosen by the difference of the means as printed, and its size."""
    delta = round(scale * (np.mean(after) - np.mean(before)), digits)
    return f"{up if delta > 0 else down} {abs(delta):.{digits}f}"


def swapped(records, field, a, b, **equal):
    """The records with `field` values `a` and `b` exchanged where the other `equal` fields match."""
    for r in records:
        if all(r.get(k) == v for k, v in equal.items()) and r.get(field) in (a, b):
            r[field] = b if r[field] == a else a
    return records


def test_every_committed_folder_reads_as_committed_with_one_seed_and_with_every_run_failed():
    assert {"baseline", "translation-gpu", "ladder-gpu", "regression-fashion"} <= set(FOLDERS)
    assert {_read(f)["experiment"] for f in FOLDERS} >= set(MODULES)
    for folder in FOLDERS:
        written = committed(folder)
        one_seed = {**written, "records": [r for r in written["records"] if r.get("seed", 0) == 0]}
        every_failed = {**written, "records": [{**r, "failed": "loss is nan"} if "seed" in r else r
                                               for r in written["records"]]}
        for variant in (written, one_seed, every_failed):
            sentences = importlib.import_module(f"experiments.{written['experiment']}").reading(variant)
            assert sentences, folder
            assert all(isinstance(s, str) and s.strip() and not s.endswith("\n") for s in sentences), folder
        assert "failed" in reading(every_failed), folder


def test_missing_optional_fields_are_no_crash():
    written = committed("baseline")
    written["config"].pop("compute_dtype", None)  # older files lack it (the committed baseline does)
    written["linear_recipe"].pop("on_edge")
    assert "bfloat16" not in reading(written)
    assert "bfloat16" in reading(committed("baseline-bf16"))
    written = committed("locality")
    del written["closeness"]
    assert "Welch's p" in reading(written)
    written = committed("spatial")
    written["grid_images"] = 50  # the quick preset's exhaustive grid covers only the first test images
    assert "of the test images (the first 50);" in reading(written)


def test_baseline_reading():
    for folder in ("baseline", "baseline-fashion", "baseline-bf16"):
        written = committed(folder)
        accuracy = kept(written["records"], "test_accuracy")
        text = reading(written)
        assert f"{mean_std(accuracy)} % test accuracy (error {mean_std(1 - accuracy)} %" in text, folder
    written = committed("baseline")
    accuracy = kept(written["records"], "test_accuracy")
    gap = round(100 * (1 - accuracy.mean()) - 12.0, 2)  # ours less LeCun et al.'s linear classifier's error
    assert gap < 0 and f"{-gap:.2f} pts lower than the 12.0 %" in reading(written)
    for r in written["records"]:
        r["test_accuracy"] = 0.85  # 15 % error: worse than LeCun et al.'s 12 %
    assert "3.00 pts higher than the 12.0 %" in reading(written)


def test_templates_reading():
    written = committed("templates")
    records, ks = written["records"], written["config"]["ks"]
    lse = {k: kept(records, "test_accuracy", k=k, reduce="logsumexp") for k in ks}
    best = max(ks, key=lambda k: lse[k].mean())
    text = reading(written)
    assert f"k = 1 (one template per class: the linear model), logsumexp over templates: {mean_std(lse[1])} %" in text
    assert f"best logsumexp mean is at k = {best}: {mean_std(lse[best])} %, " in text
    below = [k for k in ks
             if round(100 * (kept(records, "test_accuracy", k=k, reduce="max").mean() - lse[k].mean()), 2) < 0]
    assert below == [2, 4, 8, 16]  # the committed numbers; swapping the reductions must turn the word
    assert "below logsumexp at k = 2, 4, 8 and 16" in text and "above" not in text.split("Max over")[1]
    swapped(records, "reduce", "logsumexp", "max")
    assert "above logsumexp at k = 2, 4, 8 and 16" in reading(written)


def test_translation_reading():
    written = committed("translation")
    grid = [r for r in written["records"] if r["kind"] == "grid"]
    axis = lambda k: lambda r: (abs(r["test_dx"]), abs(r["test_dy"])) in ((k, 0), (0, k))  # noqa: E731
    at = lambda k, model: kept(grid, "accuracy", axis(k), model=model, augment="none", tta=False,  # noqa: E731
                               fill="zeros")
    text = reading(written)
    for model, title in (("linear", "the linear model"), ("cnn_small", "the small CNN (LeNet-5 layout)")):
        change = moved(at(0, model), at(2, model), digits=1)
        assert (f"{title} {change} pts ({mean_std(at(0, model), digits=1)} % at 0 px, "
                f"{mean_std(at(2, model), digits=1)} % at 2 px)") in text
    assert "the linear model falls further than the small CNN" in text
    swapped(written["records"], "model", "linear", "cnn_small", kind="grid", augment="none", tta=False)
    assert "the linear model falls less far than the small CNN" in reading(written)


def test_spatial_reading():
    written = committed("spatial")
    corrupted = [r for r in written["records"] if r["kind"] == "corruption"]
    plain = dict(model="linear", preprocess="none", augment="none")
    clean = kept(corrupted, "accuracy", corruption="clean", **plain)
    # Each seed's mean over the four corruptions × five severities (equal counts: the mean of their means).
    four = kept(corrupted, "accuracy", lambda r: r["corruption"] != "clean", **plain)
    text = reading(written)
    assert (f"the linear model {moved(clean, four, digits=1)} pts, from {mean_std(clean, digits=1)} % "
            f"clean to {mean_std(four, digits=1)} %") in text
    deskewed = dict(plain, preprocess="deskewing")
    assert "linear + deskewing does best under MNIST-C" in text
    deskewed_clean = kept(corrupted, "accuracy", corruption="clean", **deskewed)
    assert f"its clean accuracy {moved(clean, deskewed_clean, digits=1)} pts" in text
    assert "its clean accuracy rises" in text
    for r in corrupted:
        if r["corruption"] == "clean" and all(r[k] == v for k, v in deskewed.items()):
            r["accuracy"] = 0.5
    assert f"its clean accuracy {moved(clean, [0.5], digits=1)} pts" in reading(written)
    assert "its clean accuracy falls" in reading(written)


def test_locality_reading():
    written = committed("locality")
    records = written["records"]
    original = kept(records, "test_accuracy", model="cnn_small", pixels="original")
    permuted = kept(records, "test_accuracy", model="cnn_small", pixels="permuted")
    p = scipy_stats.ttest_ind(original, permuted, equal_var=False).pvalue
    sentence = lambda start: next(s for s in locality.reading(written) if s.startswith(start))  # noqa: E731
    assert sentence("The small CNN") == (
        f"The small CNN (LeNet-5 layout): original {mean_std(original)} %, permuted {mean_std(permuted)} %; it "
        f"{moved(original, permuted, 'gains', 'loses')} pts (Welch's p = {p:.1g}).")
    assert "it loses" in sentence("The small CNN") and "it keeps its accuracy (the same" in sentence("The linear model")
    swapped(records, "pixels", "original", "permuted", model="cnn_small")
    assert f"it {moved(permuted, original, 'gains', 'loses')} pts" in sentence("The small CNN")
    assert "it gains" in sentence("The small CNN")


def test_resolution_reading():
    written = committed("resolution")
    records = written["records"]
    sizes = sorted({r["image_size"] for r in records})
    cnn = [kept(records, "test_accuracy", model="cnn_gap", image_size=s) for s in (sizes[0], sizes[-1])]
    params = {r["parameters"] for r in records if r["model"] == "cnn_gap"}
    text = reading(written)
    assert len(params) == 1 and f"its parameters stay at {params.pop():,}" in text
    assert f"its accuracy {moved(*cnn)} pts ({mean_std(cnn[0])} % to {mean_std(cnn[1])} %)" in text
    assert "falls" in moved(*cnn) and "A parameter count that stays fixed" in text
    swapped(records, "image_size", sizes[0], sizes[-1], model="cnn_gap")
    flipped = reading(written)
    assert f"its accuracy {moved(cnn[1], cnn[0])} pts" in flipped and "rises" in moved(cnn[1], cnn[0])
    assert "A parameter count that stays fixed" not in flipped


def check_ladder(written: dict) -> list[bool]:
    """Asserts each step's accuracy and Welch verdict (scipy's, by hand) in the reading; returns the verdicts."""
    steps = [r for r in written["records"] if r["kind"] == "ladder"]
    names = list(dict.fromkeys(r["model"] for r in steps))
    accuracy = {n: kept(steps, "test_accuracy", model=n) for n in names}
    text = reading(written)
    clauses = text.split("By Welch's t-test")[1].split(". ")[0].split("; ")
    beats = []
    for name in names:
        assert f"{tables.TITLES[name]} {mean_std(accuracy[name])} %" in text
    for previous, current in zip(names, names[1:]):
        a, b = accuracy[previous], accuracy[current]
        p = scipy_stats.ttest_ind(b, a, equal_var=False).pvalue
        beats.append(bool(b.mean() > a.mean() and p < written["config"]["alpha"]))
        step = f"{tables.TITLES[current]} ({100 * (b.mean() - a.mean()):+.2f} pts, p = {p:.1g})"
        clause = next(c for c in clauses if step in c)
        assert ("does not beat" in clause) is not beats[-1] and "beat" in clause
    assert ("holds at every step" if all(beats) else "does not hold at every step") in text
    return beats


def test_ladder_reading():
    assert check_ladder(committed("ladder")) == [True, True, False]  # the cpu preset's larger CNN: no better
    written = committed("ladder-gpu")
    assert check_ladder(written) == [True, True, True]
    linear, mlp = ({r["seed"]: r["test_accuracy"] for r in written["records"] if r["kind"] == "ladder"
                    and r["model"] == name} for name in ("linear", "mlp"))
    for r in written["records"]:  # the first two steps' accuracies exchanged: the MLP no longer beats the linear
        if r["kind"] == "ladder" and r["model"] in ("linear", "mlp"):
            r["test_accuracy"] = (mlp if r["model"] == "linear" else linear)[r["seed"]]
    assert check_ladder(written) == [False, True, True]


def test_regression_reading():
    written = committed("regression")
    tested = [r for r in written["records"] if r["kind"] == "test"]
    r2 = kept(tested, "r2", problem="quality", target="score", model="linear")
    text = reading(written)
    assert f"{mean_std(r2, scale=1, digits=3)} on quality score" in text
    shifted = [r for r in written["records"] if r["kind"] == "shift"]
    far = kept(shifted, "r2", lambda r: max(abs(r["dx"]), abs(r["dy"])) == 3, problem="quality", model="linear")
    assert f"to {mean_std(far, scale=1, digits=3)}: below zero" in text and far.mean() < 0
    assert "below that of the small CNN (LeNet-5 layout) on every target" in text
    swapped(written["records"], "model", "linear", "cnn_small", kind="test")
    assert "above that of the small CNN (LeNet-5 layout) on every target" in reading(written)


EVERY_SEED_FAILED = {  # folder: (the records to fail, what the reading must say)
    "baseline": (lambda r: True, "Every run of the linear softmax on mnist failed"),
    "templates": (lambda r: r["k"] == 4 and r["reduce"] == "max", "Every run of k = 4 with max failed"),
    "translation": (lambda r: r["model"] == "cnn_small" and r["augment"] == "shift",
                    "Every run of small CNN (LeNet-5 layout) + shift aug. failed"),
    "spatial-fashion": (lambda r: r.get("model") == "cnn_large", "Every run of larger CNN failed"),
    "locality": (lambda r: r["model"] == "cnn_small",
                 "The small CNN (LeNet-5 layout): original every run failed, permuted every run failed."),
    "resolution": (lambda r: r["model"] == "cnn_gap", "Every run of CNN, global pooling at 28 px"),
    "ladder": (lambda r: r["model"] == "cnn_large", "Every run of larger CNN and larger CNN on 500 images failed"),
    "regression-fashion": (lambda r: r["model"] == "cnn_small" and r["problem"] == "quality",
                           "Every run of quality: small CNN (LeNet-5 layout) failed"),
}


@pytest.mark.parametrize("folder", sorted(EVERY_SEED_FAILED))
def test_a_model_whose_every_seed_failed_is_named_not_numbered(folder):
    chosen, says = EVERY_SEED_FAILED[folder]
    written = committed(folder)
    for r in written["records"]:
        if "seed" in r and chosen(r):
            r["failed"] = "final training loss 2.3 no better than chance (2.3)"
    assert says in reading(written)


def test_change_words_follow_the_printed_difference():
    assert tables.change([0.90, 0.92], [0.80, 0.81]) == "falls by 10.50 pts"
    assert tables.change([0.9], [0.90004]) == "stays level"  # +0.004 pts prints as 0.00
    assert tables.change([0.90, 0.92], [0.915]) == "rises by 0.50 pts, within one std over seeds"
    assert tables.change([], [0.9]) == f"cannot be compared: {tables.EVERY_RUN_FAILED}"
    assert tables.difference([0.5], [0.49999]) == 0.0 and str(tables.difference([0.5], [0.49999])) == "0.0"
    assert tables.listed([]) == "" and tables.listed(["a"]) == "a" and tables.listed("abc") == "a, b and c"
    assert tables.model_name("linear", start=True) == "The linear model"
