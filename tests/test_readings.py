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
    if len(values) == 1:
        return f"{scale * np.mean(values):.{digits}f} (1 seed)"
    return f"{scale * np.mean(values):.{digits}f} ± {scale * np.std(values, ddof=1):.{digits}f}"


def moved(before, after, up="rises by", down="falls by", digits=2, scale=100.0) -> str:
    """'falls by 3.38', say: the word chosen by the difference of the means as printed, and its size."""
    delta = round(scale * (np.mean(after) - np.mean(before)), digits)
    return f"{up if delta > 0 else down} {abs(delta):.{digits}f}"


def ranked(before, after, digits=2, scale=100.0) -> str:
    """How a reading may rank `after` against `before`, by hand: 'above' or 'below' beyond the larger std over
    seeds (ddof 1) of the sides with two seeds or more, 'within' inside it, 'level' when the difference prints as
    zero; with no side of two seeds, the direction alone (the reading then says the spread is unknown)."""
    delta = round(scale * (np.mean(after) - np.mean(before)), digits)
    stds = [np.std(v, ddof=1) for v in (before, after) if len(v) > 1]
    if delta and stds and abs(delta) <= scale * max(stds):
        return "within"
    return "above" if delta > 0 else "below" if delta < 0 else "level"


def one_seed(written: dict) -> dict:
    """The results file cut to seed 0 (records without a seed kept)."""
    return {**written, "records": [r for r in written["records"] if r.get("seed", 0) == 0]}


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
        every_failed = {**written, "records": [{**r, "failed": "loss is nan"} if "seed" in r else r
                                               for r in written["records"]]}
        for variant in (written, one_seed(written), quick_like(written), every_failed):
            sentences = importlib.import_module(f"experiments.{written['experiment']}").reading(variant)
            assert sentences, folder
            assert all(isinstance(s, str) and s.strip() and not s.endswith("\n") for s in sentences), folder
            assert all(s.count(tables.ONE_SEED) <= 1 for s in sentences), folder  # said once a sentence
        assert "failed" in reading(every_failed), folder


def quick_like(written: dict) -> dict:
    """The results file as the quick preset writes it: two seeds of the linear models, one of the deeper ones
    (translation's CNN and matrix, spatial's), the exhaustive grid on the first 50 test images."""
    deep = lambda r: r.get("model", "linear") not in ("linear", "templates") or r.get("kind") == "matrix"  # noqa: E731
    records = [r for r in written["records"] if r.get("seed", 0) < (1 if deep(r) else 2)]
    return {**written, "records": records, **({"grid_images": 50} if "grid_images" in written else {})}


# The folders whose readings rank one mean against another without a test of their own (the ladder's is
# Welch's; Fashion-MNIST's baseline has no literature to compare with).
RANKING = [f for f in FOLDERS if not f.startswith("ladder") and f != "baseline-fashion"]


@pytest.mark.parametrize("folder", RANKING)
def test_with_one_seed_every_reading_says_the_spread_is_unknown(folder):
    written = committed(folder)
    assert tables.ONE_SEED not in reading(written) and tables.ONE_SEED in reading(one_seed(written))


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
    maxed = {k: kept(records, "test_accuracy", k=k, reduce="max") for k in ks}
    # The committed numbers: at k = 2 max's mean is below, but within one std over seeds, so not ranked below.
    assert {k: ranked(lse[k], maxed[k]) for k in ks} == {1: "level", 2: "within", 4: "below", 8: "below",
                                                         16: "below"}
    assert round(100 * (maxed[2].mean() - lse[2].mean()), 2) < 0
    assert ("Max over templates is below logsumexp at k = 4, 8 and 16; level with it at k = 1; within one std over "
            "seeds of it at k = 2.") in text
    swapped(records, "reduce", "logsumexp", "max")
    assert "Max over templates is above logsumexp at k = 4, 8 and 16; level with it at k = 1; within" in \
        reading(written)
    single = one_seed(committed("templates"))  # one seed: every difference ranked, the spread said to be unknown
    first = {(k, r): kept(single["records"], "test_accuracy", k=k, reduce=r) for k in ks for r in ("logsumexp", "max")}
    assert [ranked(first[k, "logsumexp"], first[k, "max"]) for k in ks] == ["level", "below", "below", "below", "below"]
    assert ("Max over templates is below logsumexp at k = 2, 4, 8 and 16; level with it at k = 1 (one seed: the "
            "spread over seeds is unknown).") in reading(single)


def test_translation_reading():
    written = committed("translation")
    grid = [r for r in written["records"] if r["kind"] == "grid"]
    axis = lambda k: lambda r: (abs(r["test_dx"]), abs(r["test_dy"])) in ((k, 0), (0, k))  # noqa: E731
    plain = dict(augment="none", tta=False, fill="zeros")
    at = lambda k, model: kept(grid, "accuracy", axis(k), model=model, **plain)  # noqa: E731
    text = reading(written)
    for model, title in (("linear", "the linear model"), ("cnn_small", "the small CNN (LeNet-5 layout)")):
        change = moved(at(0, model), at(2, model), digits=1)
        assert (f"{title} {change} pts ({mean_std(at(0, model), digits=1)} % at 0 px, "
                f"{mean_std(at(2, model), digits=1)} % at 2 px)") in text
    fall = {model: at(0, model) - at(2, model) for model in ("linear", "cnn_small")}  # per seed: one model's
    assert ranked(fall["cnn_small"], fall["linear"], digits=1) == "above"
    assert "From 0 to 2 px the linear model's fall is larger than the small CNN's." in text
    reversed_models = committed("translation")
    swapped(reversed_models["records"], "model", "linear", "cnn_small", kind="grid", augment="none", tta=False)
    assert "From 0 to 2 px the linear model's fall is smaller than the small CNN's." in reading(reversed_models)
    # The CNN's fall made the linear model's mean + 0.1 pts, its two seeds 0.6 pts apart: within the spread.
    zero = {r["seed"]: r["accuracy"] for r in results.select(grid, axis(0), model="cnn_small", **plain)}
    for r in results.select(grid, axis(2), model="cnn_small", **plain):
        r["accuracy"] = zero[r["seed"]] - fall["linear"].mean() - (0.004, -0.002)[r["seed"]]
    assert ranked(fall["linear"], at(0, "cnn_small") - at(2, "cnn_small"), digits=1) == "within"
    assert "From 0 to 2 px the linear model's fall is within one std over seeds of the small CNN's." in reading(written)


def test_translation_matrix_reading():
    written = committed("translation")
    matrix = [r for r in written["records"] if r["kind"] == "matrix"]
    ticks = sorted({r["train_dx"] for r in matrix})
    cell = lambda t, d: kept(matrix, "accuracy", model="linear", train_dx=t, test_dx=d, test_dy=0)  # noqa: E731
    for t in ticks:  # every row peaks at its own train shift, ahead of its next best by more than the spread
        runner = max((d for d in ticks if d != t), key=lambda d: cell(t, d).mean())
        assert cell(t, t).mean() > cell(t, runner).mean() and ranked(cell(t, runner), cell(t, t)) == "above"
    rows = f"in {len(ticks)} of the {len(ticks)} rows of the train-shift × test-shift table"
    assert f"{rows}: it learns each position anew." in reading(written)
    single = reading(one_seed(written))
    assert f"{rows} (one seed: the spread over seeds is unknown)." in single and "anew" not in single
    # Row 0's next best made its own accuracy less 0.01 pts, seed by seed: ahead, but within the spread.
    runner = max((d for d in ticks if d != 0), key=lambda d: cell(0, d).mean())
    own = {r["seed"]: r["accuracy"] for r in results.select(matrix, train_dx=0, test_dx=0, test_dy=0)}
    for r in results.select(matrix, train_dx=0, test_dx=runner, test_dy=0):
        r["accuracy"] = own[r["seed"]] - 0.0001
    assert ranked(cell(0, runner), cell(0, 0)) == "within"
    assert f"{rows}, 1 of them within one std over seeds of the row's next best." in reading(written)


def test_spatial_reading():
    written = committed("spatial")
    corrupted = [r for r in written["records"] if r["kind"] == "corruption"]
    plain = dict(model="linear", preprocess="none", augment="none")
    clean = kept(corrupted, "accuracy", corruption="clean", **plain)
    # Each seed's mean over the four corruptions × five severities (equal counts: the mean of their means).
    four = lambda **v: kept(corrupted, "accuracy", lambda r: r["corruption"] != "clean", **v)  # noqa: E731
    text = reading(written)
    assert (f"the linear model {moved(clean, four(**plain), digits=1)} pts, from {mean_std(clean, digits=1)} % "
            f"clean to {mean_std(four(**plain), digits=1)} %") in text
    others = [dict(plain, model=m) for m in ("mlp", "cnn_small", "cnn_large")]
    assert [ranked(four(**plain), four(**v), digits=1) for v in others] == ["above"] * 3
    assert "under the same corruptions: every one above the linear model." in text
    # The MLP's two seeds made 3.8 pts apart about the linear model's mean + 0.1 pts: within the spread.
    for r in results.select(corrupted, lambda r: r["corruption"] != "clean", model="mlp"):
        r["accuracy"] = four(**plain).mean() + (0.02, -0.018)[r["seed"]]
    assert [ranked(four(**plain), four(**v), digits=1) for v in others] == ["within", "above", "above"]
    assert ("under the same corruptions: small CNN (LeNet-5 layout) and larger CNN above the linear model; MLP (300 "
            "hidden) within one std over seeds of it.") in reading(written)
    # The linear remedy with the best mean over the corruptions, found from the records.
    remedies = [dict(model="linear", preprocess=p, augment=a) for p, a in
                dict.fromkeys((r["preprocess"], r["augment"]) for r in corrupted if r["model"] == "linear")]
    best = max((v for v in remedies if v != plain), key=lambda v: four(**v).mean())
    assert f"{tables.variant_title(best)} does best under MNIST-C" in text
    deskewed = best  # deskewing, in the committed run
    deskewed_clean = kept(corrupted, "accuracy", corruption="clean", **deskewed)
    assert f"without it, its clean accuracy {moved(clean, deskewed_clean, digits=1)} pts." in text
    assert "its clean accuracy rises" in text
    for r in corrupted:
        if r["corruption"] == "clean" and all(r[k] == v for k, v in deskewed.items()):
            r["accuracy"] = 0.5
    assert f"its clean accuracy {moved(clean, [0.5], digits=1)} pts." in reading(written)
    assert "its clean accuracy falls" in reading(written)


def test_locality_reading():
    written = committed("locality")
    records = written["records"]
    original = kept(records, "test_accuracy", model="cnn_small", pixels="original")
    permuted = kept(records, "test_accuracy", model="cnn_small", pixels="permuted")
    p = scipy_stats.ttest_ind(original, permuted, equal_var=False).pvalue
    sentence = lambda start, w=written: next(s for s in locality.reading(w) if s.startswith(start))  # noqa: E731
    assert sentence("The small CNN") == (
        f"The small CNN (LeNet-5 layout): original {mean_std(original)} %, permuted {mean_std(permuted)} %; it "
        f"{moved(original, permuted, 'gains', 'loses')} pts (Welch's p = {p:.1g}).")
    assert "it loses" in sentence("The small CNN") and "it keeps its accuracy (the same" in sentence("The linear model")
    assert written["closeness"]["linear"]["differing_test_predictions"] == [0, 0, 0]
    assert sentence("The linear model").endswith("summation order: no test prediction differs).")
    most = max(written["closeness"]["mlp"]["differing_test_predictions"])
    assert sentence("The MLP").endswith(f"summation order: at most {most} test predictions differ).")
    written["closeness"]["mlp"]["differing_test_predictions"] = [0, 1, 0]
    assert sentence("The MLP").endswith("summation order: at most 1 test prediction differs).")
    # A seed where either run failed is recorded as None and is no evidence: the others speak.
    written["closeness"]["mlp"]["differing_test_predictions"] = [None, 1, 0]
    assert sentence("The MLP").endswith("summation order: at most 1 test prediction differs).")
    row = lambda: next(r for r in locality.make_tables(written)[0].rows if r[0] == "MLP (300 hidden)")  # noqa: E731
    assert row()[-1].startswith("same computation: at most 1 of 10,000 predictions differ")
    written["closeness"]["mlp"] |= {"differing_test_predictions": [None] * 3, "max_abs_parameter_difference": None}
    assert row()[-1] == "— (no seed whose two runs both succeeded)" and "summation order" not in sentence("The MLP")
    # One seed: no Welch's test, the change's own phrase says the spread is unknown (said once).
    single = one_seed(committed("locality"))
    first = [kept(single["records"], "test_accuracy", model="cnn_small", pixels=p) for p in ("original", "permuted")]
    assert sentence("The small CNN", single).endswith(
        f"it {moved(*first, 'gains', 'loses')} pts, one seed: the spread over seeds is unknown.")
    swapped(records, "pixels", "original", "permuted", model="cnn_small")
    assert f"it {moved(permuted, original, 'gains', 'loses')} pts" in sentence("The small CNN")
    assert "it gains" in sentence("The small CNN")


def test_resolution_reading():
    fixed = "A parameter count that stays fixed does not make the CNN indifferent to the image's scale."
    written = committed("resolution")
    records = written["records"]
    sizes = sorted({r["image_size"] for r in records})
    cnn = lambda rs=records: [kept(rs, "test_accuracy", model="cnn_gap", image_size=s)  # noqa: E731
                              for s in (sizes[0], sizes[-1])]
    params = {r["parameters"] for r in records if r["model"] == "cnn_gap"}
    text = reading(written)
    assert len(params) == 1 and f"its parameters stay at {params.pop():,}" in text
    assert f"its accuracy {moved(*cnn())} pts ({mean_std(cnn()[0])} % to {mean_std(cnn()[1])} %)" in text
    assert ranked(*cnn()) == "below" and fixed in text  # a fall beyond the spread over seeds
    swapped(records, "image_size", sizes[0], sizes[-1], model="cnn_gap")
    flipped = reading(written)
    assert f"its accuracy {moved(*cnn())} pts" in flipped and ranked(*cnn()) == "above" and fixed in flipped
    # The largest images' accuracy made the smallest's + 1 pt seed by seed: a rise within the spread, no claim.
    written = committed("resolution")
    records = written["records"]
    cnn_at = lambda size: [r for r in records if r["model"] == "cnn_gap" and r["image_size"] == size]  # noqa: E731
    smallest = {r["seed"]: r["test_accuracy"] for r in cnn_at(sizes[0])}
    for r in cnn_at(sizes[-1]):
        r["test_accuracy"] = smallest[r["seed"]] + 0.01
    assert ranked(*cnn(records)) == "within" and fixed not in reading(written)
    assert "its accuracy rises by 1.00 pts, within one std over seeds (" in reading(written)
    single = one_seed(committed("resolution"))  # one seed: the change stated, its spread unknown, no claim
    assert f"its accuracy {moved(*cnn(single['records']))} pts, one seed: the spread over seeds is unknown (" in \
        reading(single)
    assert fixed not in reading(single)


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
    # T named: one linear output per target, counted per problem from the records.
    targets = {problem: list(dict.fromkeys(r["target"] for r in tested if r["problem"] == problem))
               for problem in dict.fromkeys(r["problem"] for r in tested)}
    assert list(targets["keypoint"]) == ["x", "y"] and len(targets) == 3
    outputs = tables.listed(f"{len(t)} for {problem} ({', '.join(t)})" for problem, t in targets.items())
    assert outputs == "2 for keypoint (x, y), 1 for quality (score) and 2 for morphometry (thickness, slant)"
    assert f"With one linear output per target ({outputs}) and mean squared error" in text
    # The shift, as the shift table defines it: d px along an axis, the mean over the four directions.
    shifted = [r for r in written["records"] if r["kind"] == "shift"]
    farthest = lambda r: max(abs(r["dx"]), abs(r["dy"])) == 3  # noqa: E731
    directions = {(r["dx"], r["dy"]) for r in results.select(shifted, farthest, problem="quality", seed=0)}
    assert directions == {(3, 0), (-3, 0), (0, 3), (0, -3)}
    assert regression.ALONG_AN_AXIS == "along an axis (the mean over the four directions)"
    assert f"shifted d px {regression.ALONG_AN_AXIS}," in regression.make_tables(written)[1].caption
    far = kept(shifted, "r2", farthest, problem="quality", model="linear")
    assert ("Shifted 3 px along an axis (the mean over the four directions), which leaves every target as it was, "
            "the R² of the linear model on quality score, its lowest, falls by") in text
    assert f"to {mean_std(far, scale=1, digits=3)} (below zero: worse than predicting the mean)." in text
    assert far.mean() < 0
    cnn = {t: kept(tested, "r2", problem=p, target=t, model="cnn_small") for p, ts in targets.items() for t in ts}
    linear = {t: kept(tested, "r2", problem=p, target=t, model="linear") for p, ts in targets.items() for t in ts}
    assert {ranked(cnn[t], linear[t], digits=3, scale=1) for t in cnn} == {"below"}
    assert "Its R² is below that of the small CNN (LeNet-5 layout) on every target scored." in text
    swapped(written["records"], "model", "linear", "cnn_small", kind="test")
    assert "Its R² is above that of the small CNN (LeNet-5 layout) on every target scored." in reading(written)


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


def test_a_difference_inside_the_spread_is_not_ranked_and_one_seed_says_so():
    spread = 100 * np.std([0.90, 0.92], ddof=1)  # 1.41 pts
    inside, beyond = [0.92], [0.93]  # 1.00 and 2.00 pts above the mean of [0.90, 0.92]
    assert 1.0 <= spread < 2.0
    assert tables.compare([0.90, 0.92], inside) == (1.0, 0, tables.WITHIN_SPREAD)
    assert tables.compare([0.90, 0.92], beyond) == (2.0, 1, "")
    assert tables.rank(tables.compare([0.90, 0.92], inside)) == "within one std over seeds of"
    assert tables.rank(tables.compare(beyond, [0.90, 0.92])) == "below"
    assert tables.rank(tables.compare([0.9], [0.9])) == "level with"
    # One value a side: the difference keeps its sign, flagged; a one-valued side beside seeds takes their spread.
    assert tables.compare([0.9], [0.95]) == (5.0, 1, tables.ONE_SEED)
    assert tables.change([0.9], [0.95]) == "rises by 5.00 pts, one seed: the spread over seeds is unknown"
    assert tables.compare([0.915], [0.90, 0.92]) == (-0.5, 0, tables.WITHIN_SPREAD)
    comparisons = {"a": tables.compare([0.5], [0.9]), "b": tables.compare([0.5], [0.4]), "c": None,
                   "d": tables.compare([0.5], [0.5])}
    assert tables.standings(comparisons, "the mean") == [("above the mean", ["a"]), ("below it", ["b"]),
                                                          ("level with it", ["d"])]
    assert tables.unchecked(comparisons.values()) == " (one seed: the spread over seeds is unknown)"
    assert tables.unchecked([tables.compare([0.90, 0.92], beyond), None]) == ""
    # Listed changes: a caveat every one carries said once; only some caveated: '; ' between them.
    one = [tables.change([0.9], [0.95], words=(f"up {{}} at {d}", f"down {{}} at {d}", "level")) for d in (0, 2)]
    assert tables.listed_changes(one) == "up 5.00 at 0 and up 5.00 at 2, one seed: the spread over seeds is unknown"
    mixed = [tables.change([0.90, 0.92], inside), tables.change([0.90, 0.92], beyond)]
    assert tables.listed_changes(mixed) == "rises by 1.00 pts, within one std over seeds; rises by 2.00 pts"
    assert tables.listed_changes(["a", "b"]) == "a and b"
