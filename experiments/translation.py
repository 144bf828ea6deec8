"""Translation sensitivity: shift the test digits and watch the linear model collapse.

Run:
    python -m experiments.translation --out results/translation                  # the cpu preset
    python -m experiments.translation --out results/translation-fashion --dataset fashion_mnist
    python -m experiments.translation --out /tmp/quick --preset quick            # seconds, as the tests run it
    python -m experiments.translation --out results/translation-gpu --preset gpu # the committed GPU tables

Runtime (measured): cpu 328 s and quick 22 s cold, 10 s with JAX's compilation cache and the executable
store filled (`results/quick/reproduce.json`: cold), on 2 CPU cores (AMD EPYC); gpu 117 s on an NVIDIA
H200 (before the evaluation became one program per model).
Expected (MNIST, zero fill, mean over seeds): the linear model 92.6 % at 0 px; about 87 % at
1 px, 61–66 % at 2 px along an axis, about 40 % at 2 px on the diagonal and 13–25 % at 4 px.
Random-shift augmentation (±2 px) costs it about 5 points at 0 px and gains about 17 at 2 px.
The small CNN is far less sensitive (99.3 % at 0 px, 98.7 % at 1 px, 62 % at 4 px with the gpu
preset; 99.0 %, 98.3 % and 80 % at 3 px with the cpu preset's 3 epochs), and with the same
augmentation 96 % at 4 px. The cpu preset's grid is [-3, 3]², the gpu preset's [-4, 4]².

Phases:
1. the linear recipe (tuned on validation), S seeds vmapped, and the small CNN (LeNet-5 layout,
   `cnn_seeds` seeds), each also trained with random-shift augmentation (±2 px);
2. per model, one compiled evaluation: every test image at every offset of [-K, K]² in both
   fill modes, and at two independent random shifts in [-3, 3]² per image, all seeds at once;
3. invariance metrics from those predictions: consistency (Zhang 2019), P(top-1 change)
   under a 1-px shift (Azulay & Weiss 2019), grid accuracy over ±2 and ±3 px (Engstrom et al. 2019);
   test-time augmentation (TTA: logits averaged over the shifts in [-1, 1]²) as a variant;
4. the train-shift × test-shift matrix: models trained on data shifted by a fixed dx in
   [-K, K] (train offsets × seeds, one program), tested at every offset; the linear model
   re-learns each digit at each position (a band along the diagonal).
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from typing import ClassVar

import jax
import numpy as np

from mnist_linear import config as configs
from mnist_linear import (data, evaluate, experiment, invariance, linear, models, plots, results, sharding, tables,
                          tasks, train, transforms)

field = configs.field


@dataclasses.dataclass(frozen=True)
class Config(configs.TrainingConfig):
    max_shift: int = field(3, "K: the test grid is every offset in [-K, K]² px (at least 3)")
    consistency_shift: int = field(3, "random shifts of the consistency metric lie in [-this, this]² px")
    augment_shift: int = field(2, "shift augmentation draws offsets in [-this, this]² px per image and step")
    tta_shift: int = field(1, "test-time augmentation averages the logits over [-this, this]² px")
    matrix_seeds: int = field(5, "seeds per train offset of the linear train-shift matrix")
    eval_batch_size: int = field(500, "test images per evaluation chunk (linear)")
    cnn_seeds: int = field(2, "seeds of the small CNN")
    cnn_epochs: int = field(3, "epochs of the small CNN")
    cnn_tta: bool = field(False, "also evaluate the CNN with TTA (multiplies its grid cost by (2·tta_shift + 1)²)")
    matrix_cnn_seeds: int = field(0, "seeds per train offset of the CNN's matrix; 0 leaves it out")
    cnn_eval_batch_size: int = field(100, "test images per evaluation chunk (CNN)")
    cnn_offsets_at_once: int = field(9, "grid points the CNN evaluates at once (memory against speed)")
    test_examples: int = field(0, "test images scored (the first ones); 0: all 10,000")

    PRESETS: ClassVar[dict] = {
        "quick": {**configs.QUICK_TRAINING, "matrix_seeds": 1, "cnn_seeds": 1, "cnn_epochs": 1, "test_examples": 500},
        "cpu": {},
        "gpu": {"max_shift": 4, "cnn_seeds": 10, "cnn_epochs": 10, "matrix_cnn_seeds": 5, "cnn_eval_batch_size": 200,
                "cnn_offsets_at_once": 3},
    }

    def check(self) -> None:
        super().check()
        for name in ("max_shift", "consistency_shift", "augment_shift", "tta_shift"):
            value = getattr(self, name)
            if not 0 <= value < data.IMAGE_SIZE:
                raise ValueError(f"{name} must be in [0, {data.IMAGE_SIZE - 1}] px, got {value}.")
        if self.max_shift < 3:
            raise ValueError("max_shift must be at least 3: the grid accuracy over ±3 px needs it.")
        for name in ("matrix_seeds", "cnn_seeds", "cnn_epochs", "eval_batch_size", "cnn_eval_batch_size",
                     "cnn_offsets_at_once"):
            configs._at_least(name, getattr(self, name), 1)
        configs._at_least("matrix_cnn_seeds", self.matrix_cnn_seeds, 0)
        if not 0 <= self.test_examples <= 10_000:
            raise ValueError(f"test_examples must be in [0, 10000] (0: all), got {self.test_examples}.")


TASK = tasks.CLASSIFICATION
TRANSLATE = functools.partial(transforms.translate, fill="zeros")
# The evaluation grid's transform: an offset and a fill per image, so the shift grid in both fills
# and the consistency draws are one compiled program.
SHIFT_EACH = transforms.each(transforms.translate_filled)


def evaluation_grid(config: Config, num_images: int) -> tuple[tuple[np.ndarray, ...], dict]:
    """Per-image (dx, dy, wrap) arrays `(P, N)`: the offset grid in each fill, then the two
    consistency draws (zero fill); and the points' positions by purpose."""
    dxs, dys = transforms.offset_grid(config.max_shift)
    fills = np.repeat(np.array([f == "wrap" for f in transforms.FILLS]), len(dxs))
    first, second = jax.random.split(jax.random.fold_in(jax.random.key(config.seed), 2))
    draws = [np.asarray(transforms.random_offsets(k, num_images, config.consistency_shift)) for k in (first, second)]
    column = lambda v: np.broadcast_to(np.asarray(v)[:, None], (len(v), num_images))  # noqa: E731
    dx = np.concatenate([column(np.tile(dxs, 2)), draws[0][:1], draws[1][:1]])
    dy = np.concatenate([column(np.tile(dys, 2)), draws[0][1:], draws[1][1:]])
    wrap = np.concatenate([column(fills), np.zeros((2, num_images), bool)])
    grid_points = len(fills)
    layout = {"dx": np.tile(dxs, 2), "dy": np.tile(dys, 2),
              "fill": [transforms.FILLS[int(w)] for w in fills], "consistency": [grid_points, grid_points + 1]}
    return (dx.astype(np.int32), dy.astype(np.int32), wrap), layout


def variant_records(name: str, augment: str, tta: bool, classes: np.ndarray, labels: np.ndarray, layout: dict,
                    failed: np.ndarray) -> list[dict]:
    """Grid and metric records of one model variant from its classes `(P, S, N)` on the evaluation grid."""
    tag = {"model": name, "augment": augment, "tta": tta}
    accuracy = (classes == labels).mean(-1)  # (P, S)
    dx, dy, fill = layout["dx"], layout["dy"], np.array(layout["fill"])
    records = [{"kind": "grid", **tag, "seed": s, "test_dx": int(dx[o]), "test_dy": int(dy[o]), "fill": fill[o],
                "accuracy": float(accuracy[o, s]), "failed": failed[s] or None}
               for o in range(len(dx)) for s in range(accuracy.shape[1])]
    zeros = fill == "zeros"
    grid = (dx, dy, zeros)
    centre = invariance.index(grid, (0, 0, True))
    values = {
        "consistency": invariance.consistency(classes[layout["consistency"]]),
        "top1_change_1px": invariance.top1_change(
            classes, centre, [invariance.index(grid, (i, j, True)) for i, j in ((1, 0), (-1, 0), (0, 1), (0, -1))]),
        **{f"grid_accuracy_{r}px": invariance.grid_accuracy(
            classes[: len(dx)], labels, zeros & (np.abs(dx) <= r) & (np.abs(dy) <= r)) for r in (2, 3)},
    }
    return records + [{"kind": "metric", **tag, "seed": s, "metric": metric, "value": float(v[s]),
                       "failed": failed[s] or None} for metric, v in values.items() for s in range(len(v))]


def shift_matrix(name: str, model: models.Model, hparams, run_config: configs.TrainingConfig, seeds: int,
                 split: data.Split, test: data.Split, max_shift: int, **eval_settings) -> tuple[list, dict]:
    """(records, timing) of `seeds` models trained at each fixed dx in [-K, K] (dy = 0), tested at every
    offset (zero fill)."""
    train_dx = np.arange(-max_shift, max_shift + 1, dtype=np.int32)
    timing = {}
    (params, log), timing[f"{name}: train-shift matrix, training"] = experiment.compile_and_run(
        train.train_grid, sharding.replicated(experiment.seed_keys(run_config.seed, seeds)), split.images,
        split.labels, sharding.replicated(jax.tree.map(np.float32, hparams)),
        sharding.replicated((train_dx, np.zeros_like(train_dx))), model=model, task=TASK,
        config=run_config.train_config, transform=TRANSLATE)
    flat = jax.tree.map(lambda p: p.reshape(len(train_dx) * seeds, *p.shape[2:]), params)
    dxs, dys = transforms.offset_grid(max_shift)
    classes, timing[f"{name}: train-shift matrix, evaluation"] = experiment.compile_and_run(
        evaluate.grid_outputs, flat, test.images, sharding.replicated((dxs, dys)), apply=model.logits, transform=TRANSLATE,
        reduce=TASK.reduce, **eval_settings)
    accuracy = (np.asarray(classes) == test.labels).mean(-1).reshape(len(dxs), len(train_dx), seeds)
    failed = experiment.report_failures(f"{name} trained at fixed shifts", log, TASK.chance_loss(split.labels))
    records = [{"kind": "matrix", "model": name, "seed": j, "train_dx": int(train_dx[i]), "train_dy": 0,
                "test_dx": int(dxs[o]), "test_dy": int(dys[o]), "fill": "zeros", "accuracy": float(accuracy[o, i, j]),
                "failed": failed[i, j] or None}
               for i in range(len(train_dx)) for j in range(seeds) for o in range(len(dxs))]
    return records, timing


def main(argv=None) -> dict:
    run = experiment.start(Config, __doc__, argv)
    config, out, dataset, split = run.config, run.out, run.dataset, run.train_split
    n_test = config.test_examples or len(dataset.test.labels)
    test = data.Split(run.test_split.images[:n_test], dataset.test.labels[:n_test])
    grid, layout = evaluation_grid(config, n_test)
    grid = sharding.replicated(grid)
    augment = functools.partial(transforms.random_shift, max_shift=config.augment_shift)
    tta_grid = transforms.offset_grid(config.tta_shift)

    recipe = experiment.tune_linear(config, split)
    cnn = models.get("cnn_small")
    cnn_config = dataclasses.replace(config, seeds=config.cnn_seeds, epochs=config.cnn_epochs)
    linear_eval = {"batch_size": config.eval_batch_size, "models_at_once": config.models_at_once}
    cnn_eval = {"batch_size": config.cnn_eval_batch_size, "points_at_once": config.cnn_offsets_at_once,
                "models_at_once": config.models_at_once}

    linear_plain = experiment.train_models("linear", config, split, recipe.best, models.LINEAR)
    linear_aug = experiment.train_models("linear + shift aug.", config, split, recipe.best, models.LINEAR,
                                         augment=augment)
    cnn_plain = experiment.train_models("cnn_small", cnn_config, split, config.deep_hparams, cnn)
    cnn_aug = experiment.train_models("cnn_small + shift aug.", cnn_config, split, config.deep_hparams, cnn,
                                      augment=augment)
    timing = {"linear: training": linear_plain.timing, "linear + shift aug.: training": linear_aug.timing,
              "cnn_small: training": cnn_plain.timing, "cnn_small + shift aug.: training": cnn_aug.timing}
    linear_tta = invariance.averaged_over(models.LINEAR.logits, TRANSLATE, tta_grid)
    cnn_tta = invariance.averaged_over(cnn.logits, TRANSLATE, tta_grid)
    variants = [  # (model, augmentation, TTA, trained models, what is evaluated, evaluation settings)
        ("linear", "none", False, linear_plain, models.LINEAR.logits, linear_eval),
        ("linear", "none", True, linear_plain, linear_tta, linear_eval),
        ("linear", "shift", False, linear_aug, models.LINEAR.logits, linear_eval),
        ("linear", "shift", True, linear_aug, linear_tta, linear_eval),
        ("cnn_small", "none", False, cnn_plain, cnn.logits, cnn_eval),
        ("cnn_small", "shift", False, cnn_aug, cnn.logits, cnn_eval),
    ] + ([("cnn_small", "none", True, cnn_plain, cnn_tta, cnn_eval),
          ("cnn_small", "shift", True, cnn_aug, cnn_tta, cnn_eval)] if config.cnn_tta else [])
    records = []
    for name, aug_name, tta, trained, apply, eval_settings in variants:
        label = name + tables.AUGMENTATIONS[aug_name] + (" + TTA" if tta else "")
        classes, timing[f"{label}: evaluation"] = experiment.compile_and_run(
            evaluate.grid_outputs, trained.params, test.images, grid, apply=apply, transform=SHIFT_EACH,
            reduce=TASK.reduce, per_example=True, **eval_settings)
        records += variant_records(name, aug_name, tta, np.asarray(classes), test.labels, layout, trained.failed)
    # The shift grid is shared by every image: the linear models score the test images through their templates
    # shifted back (`evaluate.grid_outputs`' linear_transform), one GEMM per chunk for every shift.
    matrices = [("linear", models.LINEAR, recipe.best, config, config.matrix_seeds,
                 {**linear_eval, "linear_transform": True})]
    if config.matrix_cnn_seeds:
        matrices.append(("cnn_small", cnn, config.deep_hparams, cnn_config, config.matrix_cnn_seeds, cnn_eval))
    for name, model, hparams, run_config, seeds, eval_settings in matrices:
        matrix_records, matrix_timing = shift_matrix(name, model, hparams, run_config, seeds, split, test,
                                                     config.max_shift, **eval_settings)
        records += matrix_records
        timing |= matrix_timing

    for phase, t in timing.items():
        print(f"{phase}: compile {t['compile_s']:.1f} s, run {t['run_s']:.1f} s")
    out.mkdir(parents=True, exist_ok=True)
    drawn = experiment.good_seed(linear_aug.params, linear_aug.failed)
    if drawn is not None:  # a failed model is never drawn as if it were fine
        plots.templates(linear.templates(drawn[1]), data.SOURCES[config.dataset].classes,
                        out / "templates_shift_augmented.png",
                        title=f"Templates after random-shift augmentation (±{config.augment_shift} px, seed "
                              f"{drawn[0]}): blurred")
    return experiment.finish(
        run, experiment="translation", make_tables=make_tables, write_figures=write_figures, records=records,
        timing=timing, test_images=n_test, group=("kind", "model", "augment"),
        results_file="results.json.gz",  # one record per model, seed, offset and fill: megabytes as text
        linear_recipe=recipe.recipe())


def _axis(k: int):
    return lambda r: (abs(r["test_dx"]), abs(r["test_dy"])) in ((k, 0), (0, k))


def _diagonal(k: int):
    return lambda r: abs(r["test_dx"]) == abs(r["test_dy"]) == k


def make_tables(written: dict) -> list[tables.Table]:
    """Every table, from the contents of results.json alone."""
    config, records = written["config"], written["records"]
    grid = results.select(records, kind="grid")
    cell = lambda values: tables.mean_std_of(values, digits=1)  # noqa: E731
    variants = results.distinct(grid, ("model", "augment", "tta"))
    seeds = [len(results.per_seed(grid, "accuracy", **v, test_dx=0, test_dy=0, fill="zeros")) for v in variants]
    failures = tables.failure_note(results.select(grid, test_dx=0, test_dy=0, fill="zeros"), tables.variant_title)
    directions = {"x": lambda k: lambda r: abs(r["test_dx"]) == k and r["test_dy"] == 0,
                  "y": lambda k: lambda r: abs(r["test_dy"]) == k and r["test_dx"] == 0, "diagonal": _diagonal}
    out = []
    for variant, n in zip(variants, seeds):
        out.append(tables.Table(
            caption=f"Test accuracy (%) of {tables.variant_title(variant)} under test-time shifts, mean ± std over "
                    f"{tables.counted(n, 'seed')}.",
            header=("shift", *(f"{d}, {fill}" for fill in transforms.FILLS for d in directions)),
            rows=tuple((f"{k} px", *(cell(results.per_seed(grid, "accuracy", directions[d](k), **variant, fill=fill))
                                     for fill in transforms.FILLS for d in directions))
                       for k in range(config["max_shift"] + 1)),
            notes=("Along x: the mean over ±k px; diagonal: over the four (±k, ±k). zeros: vacated pixels "
                   "are 0 and content leaves the canvas; wrap: a circular roll.",),
        ))

    metric_records = results.select(records, kind="metric")
    metric = lambda v, m: cell(results.per_seed(metric_records, "value", **v, metric=m))  # noqa: E731
    c, t, a = config["consistency_shift"], config["tta_shift"], config["augment_shift"]
    out.append(tables.Table(
        caption=f"Shift robustness and invariance metrics (%) on {config['dataset']}, zero fill, mean ± std over "
                "seeds.",
        header=("model", "seeds", *(f"{k} px" for k in range(config["max_shift"] + 1)), "2 px diagonal",
                "consistency ↑", "P(top-1 change, 1 px) ↓", "grid acc. ±2 px", "grid acc. ±3 px"),
        rows=tuple(
            (tables.variant_title(v), str(n),
             *(cell(results.per_seed(grid, "accuracy", _axis(k), **v, fill="zeros"))
               for k in range(config["max_shift"] + 1)),
             cell(results.per_seed(grid, "accuracy", _diagonal(2), **v, fill="zeros")),
             metric(v, "consistency"), metric(v, "top1_change_1px"),
             metric(v, "grid_accuracy_2px"), metric(v, "grid_accuracy_3px"))
            for v, n in zip(variants, seeds)),
        notes=(f"k px: the mean over the four axis shifts of k px. Consistency: the same prediction under two "
               f"random shifts in [-{c}, {c}]² (Zhang 2019). P(top-1 change): over the four 1-px axis shifts "
               "(Azulay & Weiss 2019). Grid accuracy: correct at every offset of the grid (Engstrom et al. 2019). "
               f"TTA: logits averaged over the shifts in [-{t}, {t}]²; shift aug.: trained on random shifts in "
               f"[-{a}, {a}]². {tables.recipe_note(written['linear_recipe'], config)}; the small CNN (LeNet-5 "
               f"layout) rate {config['deep_learning_rate']:g}, decay {config['deep_weight_decay']:g}, "
               f"{tables.counted(config['cnn_epochs'], 'epoch')}. {written['test_images']:,} test images. {failures}"
               f"Ran on {tables.machine(written['environment'])}.",),
    ))

    matrix = results.select(records, kind="matrix")
    for name in dict.fromkeys(r["model"] for r in matrix):
        ticks, values = matrix_values(matrix, name)
        n = len(results.per_seed(matrix, "accuracy", model=name, train_dx=ticks[0], test_dx=0, test_dy=0))
        out.append(tables.Table(
            caption=f"Train-shift × test-shift: test accuracy (%) of the {tables.TITLES[name]} trained on data "
                    f"shifted by train dx, tested at test dx (dy = 0, zero fill), mean over "
                    f"{tables.counted(n, 'seed')}.",
            header=("train dx \\ test dx", *(f"{d:+d}" for d in ticks)),
            rows=tuple((f"{t:+d}", *("—" if np.isnan(v) else f"{v:.1f}" for v in row)) for t, row in zip(ticks, values)),
            notes=tuple(filter(None, [tables.failure_note(
                results.select(matrix, model=name, test_dx=0, test_dy=0),
                lambda r: f"trained at dx {r['train_dx']:+d}").rstrip()])),
        ))
    return out


def reading(written: dict) -> list[str]:
    """What the tables show, in 3–5 sentences made from the results file alone (numbers through
    `results.per_seed` and the tables' formatting): how far the linear model and the small CNN fall when the
    digits are shifted, what shift augmentation costs and buys the linear model, grid accuracy, and whether
    each row of the train-shift × test-shift table peaks where train and test shifts agree."""
    config, records = written["config"], written["records"]
    grid = results.select(records, kind="grid")
    k, spread = config["max_shift"], config["augment_shift"]
    at = lambda d, model, augment="none": results.per_seed(  # noqa: E731
        grid, "accuracy", _axis(d), model=model, augment=augment, tta=False, fill="zeros")
    cell = lambda values: tables.stated(values, digits=1)  # noqa: E731
    moves = ("rises by {} pts", "falls by {} pts", "stays level")
    out = []
    for name in ("linear", "cnn_small"):
        if len(at(0, name)):
            moved = tables.change(at(0, name), at(2, name), digits=1, words=moves)
            out.append(f"Shifted by 2 px along an axis (zero fill), {tables.model_name(name)} {moved} "
                       f"({cell(at(0, name))} at 0 px, {cell(at(2, name))} at 2 px) and scores {cell(at(k, name))} "
                       f"at {k} px.")
    # Each seed's fall is one model's, so the spread checked is that of the falls themselves.
    falls = {name: at(0, name) - at(2, name) for name in ("linear", "cnn_small")}
    further = tables.compare(falls["cnn_small"], falls["linear"], digits=1)
    if further is not None:
        word = tables.rank(further, ("larger than", "smaller than", "the same as", tables.RANKS[-1]))
        out.append(f"From 0 to 2 px the linear model's fall is {word} the small CNN's{tables.unchecked([further])}.")
    if len(at(0, "linear", "shift")):
        gains = [tables.change(at(d, "linear"), at(d, "linear", "shift"), digits=1, words=(
            f"gains {{}} pts at {d} px", f"loses {{}} pts at {d} px", f"keeps its accuracy at {d} px")) for d in (0, 2)]
        out.append(f"Trained on random shifts in [-{spread}, {spread}]² px, the linear model "
                   f"{tables.listed_changes(gains)}.")
    matrix = results.select(records, kind="matrix")
    ticks, values = matrix_values(matrix, "linear")
    rows = [(t, row) for t, row in zip(ticks, values) if not np.isnan(row).all()]
    if rows:
        leads = [lead for t, row in rows if (lead := _lead(matrix, ticks, t, row)) is not None]
        clear, unknown = sum(lead.sign > 0 for lead in leads), tables.unchecked(leads)
        close = (f", {len(leads) - clear} of them {tables.WITHIN_SPREAD} of the row's next best"
                 if clear < len(leads) else "")
        anew = ": it learns each position anew" if clear == len(rows) and not unknown else ""
        out.append(f"Trained at a fixed shift, the linear model scores best at that same test shift in {len(leads)} of "
                   f"the {len(rows)} rows of the train-shift × test-shift table{close}{anew}{unknown}.")
    return out + tables.failed_models(results.select(grid, test_dx=0, test_dy=0, fill="zeros"), tables.variant_title,
                                      ("model", "augment", "tta"))


def _lead(matrix: list[dict], ticks: list[int], train_dx: int, row: np.ndarray) -> tables.Compared | None:
    """How a matrix row's accuracy at its own train shift compares with its next best test shift's; None
    when the row peaks elsewhere."""
    best, next_best = (ticks[i] for i in np.argsort(-np.nan_to_num(row, nan=-np.inf), kind="stable")[:2])
    if best != train_dx:
        return None
    at = lambda d: results.per_seed(matrix, "accuracy", model="linear", train_dx=train_dx, test_dx=d,  # noqa: E731
                                    test_dy=0)
    return tables.compare(at(next_best), at(train_dx))


def matrix_values(matrix: list[dict], name: str) -> tuple[list[int], np.ndarray]:
    """(train dx ticks, mean accuracy (%) `(train dx, test dx)` at test dy = 0) of one model's matrix records."""
    ticks = sorted({r["train_dx"] for r in results.select(matrix, model=name)})
    values = np.array([[_percent(results.per_seed(matrix, "accuracy", model=name, train_dx=t, test_dx=d, test_dy=0))
                        for d in ticks] for t in ticks])
    return ticks, values


def _percent(values: np.ndarray) -> float:
    """The mean in percent, nan when every run failed (a blank cell)."""
    return 100 * values.mean() if len(values) else np.nan


def write_figures(written: dict, out) -> None:
    k = written["config"]["max_shift"]
    ticks = list(range(-k, k + 1))
    grid = results.select(written["records"], kind="grid")
    for v in results.distinct(grid, ("model", "augment", "tta")):
        slug = "_".join([v["model"], *(["shift_aug"] if v["augment"] == "shift" else []), *(["tta"] if v["tta"] else [])])
        for fill in transforms.FILLS:
            chosen = results.select(grid, **v, fill=fill)
            values = np.array([[_percent(results.per_seed(chosen, "accuracy", test_dx=dx, test_dy=dy))
                                for dx in ticks] for dy in ticks])
            plots.heatmap(values, ticks, ticks, out / f"grid_{slug}_{fill}.png", x_label="dx (px, + is right)",
                          y_label="dy (px, + is down)",
                          title=f"{tables.variant_title(v)}, {fill} fill: test accuracy (%)")
    matrix = results.select(written["records"], kind="matrix")
    for name in dict.fromkeys(r["model"] for r in matrix):
        train_ticks, values = matrix_values(matrix, name)
        plots.heatmap(values, train_ticks, train_ticks, out / f"train_test_matrix_{name}.png",
                      x_label="test dx (px)", y_label="train dx (px)",
                      title=f"{tables.TITLES[name]}: train shift × test shift, accuracy (%)")


if __name__ == "__main__":
    main(sys.argv[1:])
