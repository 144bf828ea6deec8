"""Translation sensitivity: shift the test digits and watch the linear model collapse.

Run:
    python -m experiments.translation --out results/translation
    python -m experiments.translation --out /tmp/quick --quick     # seconds, as the tests run it

Runtime (2 CPU cores): about 5 minutes, half of it the train-shift matrix (45 models).
Expected (MNIST, zero fill, mean over seeds): 92.6 % at 0 px; about 86 % at 1 px and
about 60–67 % at 2 px along an axis; about 37 % at 2 px on the diagonal; 12–25 % at 4 px.
Random-shift augmentation (±2 px) trades about 1 point at 0 px for far more at 2–4 px.

Phases, each one compiled program, timed as compile + run:
1. the tuned linear model (the baseline's recipe and seeds), S seeds vmapped;
2. every test image at every offset of [-K, K]², both fill modes, all seeds at once;
3. invariance metrics: consistency under two random shifts in [-3, 3]² (Zhang 2019),
   P(top-1 change) under a 1-px shift (Azulay & Weiss 2019), grid accuracy over
   ±2 and ±3 px (Engstrom et al. 2019);
4. the train-shift × test-shift matrix: models trained on data shifted by a fixed
   dx in [-K, K] (train offsets × seeds vmapped), tested at every offset;
5. remedies: random-shift augmentation (±2 px) and test-time augmentation
   (logits averaged over the shifts in [-1, 1]²).
"""

from __future__ import annotations

import dataclasses
import functools
import re
import sys

import jax
import jax.numpy as jnp
import numpy as np

from mnist_linear import (data, experiment, invariance, linear, metrics, models, plots, shifts, stats, tables,
                          train)


@dataclasses.dataclass(frozen=True)
class Config(experiment.TrainingConfig):
    max_shift: int = 4  # K: the test grid is [-K, K]²
    consistency_shift: int = 3
    augment_shift: int = 2
    tta_shift: int = 1
    matrix_seeds: int = 5
    eval_batch_size: int = 500


QUICK = {**experiment.QUICK_TRAINING, "matrix_seeds": 1, "max_shift": 3}


def evaluate(name, logits_fn, params, test: data.Split, config: Config, timing: dict) -> tuple[list, list]:
    """Grid records for both fills and metric records for one model variant (S seeds)."""
    dxs, dys = shifts.offset_grid(config.max_shift)
    images, labels = jnp.asarray(test.images), np.asarray(test.labels)
    grid_records, metric_records, zero_fill = [], [], None
    for fill in shifts.FILLS:
        preds, timing[f"{name}: shift grid, {fill}"] = experiment.compile_and_run(
            invariance.grid_predictions, params, images, dxs, dys,
            logits_fn=logits_fn, fill=fill, batch_size=config.eval_batch_size)
        preds = np.asarray(preds)
        accuracy = (preds == labels).mean(-1)  # (O, S)
        grid_records += [
            {"model": name, "seed": s, "train_dx": 0, "train_dy": 0, "test_dx": int(dxs[o]),
             "test_dy": int(dys[o]), "fill": fill, "accuracy": float(accuracy[o, s])}
            for o in range(len(dxs)) for s in range(accuracy.shape[1])
        ]
        zero_fill = preds if fill == "zeros" else zero_fill
    paired, timing[f"{name}: consistency"] = experiment.compile_and_run(
        invariance.paired_shift_predictions, params, images,
        jax.random.fold_in(jax.random.key(config.seed), 2),
        logits_fn=logits_fn, max_shift=config.consistency_shift, batch_size=config.eval_batch_size)
    values = {
        "consistency": invariance.consistency(np.asarray(paired)),
        "top1_change_1px": invariance.top1_change(zero_fill, dxs, dys),
        "grid_accuracy_2px": invariance.grid_accuracy(zero_fill, labels, dxs, dys, 2),
        "grid_accuracy_3px": invariance.grid_accuracy(zero_fill, labels, dxs, dys, 3),
    }
    metric_records = [{"model": name, "seed": s, "metric": metric, "value": float(v[s])}
                      for metric, v in values.items() for s in range(len(v))]
    return grid_records, metric_records


def shift_matrix(config: Config, split: data.Split, test: data.Split, hparams, timing: dict) -> list:
    """Records of models trained at a fixed dx (dy = 0), tested on the whole grid (zero fill)."""
    train_dx = np.arange(-config.max_shift, config.max_shift + 1, dtype=np.int32)
    keys = experiment.seed_keys(config.seed, config.matrix_seeds)
    (params, log), timing["train-shift matrix: training"] = experiment.compile_and_run(
        invariance.train_shifted, keys, jnp.asarray(split.images), jnp.asarray(split.labels),
        train.Hyperparams(jnp.float32(hparams.learning_rate), jnp.float32(hparams.weight_decay)),
        train_dx, np.zeros_like(train_dx), model=models.LINEAR, loss_fn=metrics.cross_entropy,
        config=config.train_config)
    t, s = len(train_dx), config.matrix_seeds
    flat = jax.tree.map(lambda p: p.reshape(t * s, *p.shape[2:]), params)
    dxs, dys = shifts.offset_grid(config.max_shift)
    preds, timing["train-shift matrix: evaluation"] = experiment.compile_and_run(
        invariance.grid_predictions, flat, jnp.asarray(test.images), dxs, dys,
        logits_fn=linear.logits, batch_size=config.eval_batch_size)
    accuracy = (np.asarray(preds) == test.labels).mean(-1).reshape(len(dxs), t, s)
    diverged = np.asarray(log.diverged)
    return [
        {"model": "linear", "seed": j, "train_dx": int(train_dx[i]), "train_dy": 0, "test_dx": int(dxs[o]),
         "test_dy": int(dys[o]), "fill": "zeros", "accuracy": float(accuracy[o, i, j]),
         "diverged": bool(diverged[i, j])}
        for i in range(t) for j in range(s) for o in range(len(dxs))
    ]


def _accuracy_by_seed(records, **where) -> np.ndarray:
    """Per-seed accuracy averaged over the records matching `where` (values may be sets)."""
    match = lambda r: all(r[k] in v if isinstance(v, set) else r[k] == v for k, v in where.items())  # noqa: E731
    by_seed: dict[int, list] = {}
    for r in filter(match, records):
        by_seed.setdefault(r["seed"], []).append(r["accuracy"])
    return np.array([np.mean(v) for _, v in sorted(by_seed.items())])


def _along(direction: str, k: int) -> dict:
    """The offsets k px along x, along y or on both diagonals, in both directions."""
    signs = {(a, b) for a in (-1, 1) for b in (-1, 1)}
    pairs = {"x": {(a * k, 0) for a, _ in signs}, "y": {(0, a * k) for a, _ in signs},
             "diagonal": {(a * k, b * k) for a, b in signs}}[direction]
    return {"test_offset": pairs}


def _with_offsets(records):
    return [{**r, "test_offset": (r["test_dx"], r["test_dy"])} for r in records]


def make_tables(written: dict) -> list[tables.Table]:
    """Every table, from the contents of results.json alone."""
    config = written["config"]
    grid = _with_offsets([r for r in written["records"] if r["kind"] == "grid"])
    matrix = _with_offsets([r for r in written["records"] if r["kind"] == "matrix" and not r["diverged"]])
    metric_records = [r for r in written["records"] if r["kind"] == "metric"]
    names = list(dict.fromkeys(r["model"] for r in grid))
    k_max = config["max_shift"]
    cell = lambda values: tables.mean_std(stats.summarize(values), digits=1)  # noqa: E731

    out = []
    for name in names:
        rows = []
        for k in range(k_max + 1):
            rows.append((f"{k} px", *(cell(_accuracy_by_seed(grid, model=name, fill=fill, **_along(d, k)))
                                      for fill in shifts.FILLS for d in ("x", "y", "diagonal"))))
        out.append(tables.Table(
            caption=f"Test accuracy (%) of {name} under test-time shifts, mean ± std over "
                    f"{config['seeds']} seeds.",
            header=("shift", *(f"{d}, {fill}" for fill in shifts.FILLS for d in ("x", "y", "diagonal"))),
            rows=tuple(rows),
            notes=("Along x: the mean over ±k px; diagonal: over the four (±k, ±k). zeros: vacated pixels "
                   "are 0 and content leaves the canvas; wrap: a circular roll.",),
        ))

    metric = lambda name, m: cell(np.array([r["value"] for r in metric_records  # noqa: E731
                                            if r["model"] == name and r["metric"] == m]))
    out.append(tables.Table(
        caption=f"Shift robustness and invariance metrics (%), zero fill, mean ± std over {config['seeds']} seeds.",
        header=("model", *(f"{k} px" for k in range(k_max + 1)), "2 px diagonal", "consistency ↑",
                "P(top-1 change, 1 px) ↓", "grid acc. ±2 px", "grid acc. ±3 px"),
        rows=tuple(
            (name,
             *(cell(_accuracy_by_seed(grid, model=name, fill="zeros",
                                      test_offset=_along("x", k)["test_offset"] | _along("y", k)["test_offset"]))
               for k in range(k_max + 1)),
             cell(_accuracy_by_seed(grid, model=name, fill="zeros", **_along("diagonal", 2))),
             metric(name, "consistency"), metric(name, "top1_change_1px"),
             metric(name, "grid_accuracy_2px"), metric(name, "grid_accuracy_3px"))
            for name in names),
        notes=(f"k px: the mean over the four axis shifts of k px. Consistency: the same prediction under two "
               f"random shifts in [-{config['consistency_shift']}, {config['consistency_shift']}]² (Zhang 2019). "
               "P(top-1 change): over the four 1-px axis shifts (Azulay & Weiss 2019). Grid accuracy: correct "
               "at every offset of the grid (Engstrom et al. 2019). TTA: logits averaged over the shifts in "
               f"[-{config['tta_shift']}, {config['tta_shift']}]²; shift aug.: trained on random shifts in "
               f"[-{config['augment_shift']}, {config['augment_shift']}]².",),
    ))

    train_dx = sorted({r["train_dx"] for r in matrix})
    out.append(tables.Table(
        caption=f"Train-shift × test-shift: test accuracy (%) of the linear model trained on data shifted by "
                f"train dx, tested at test dx (dy = 0, zero fill), mean over {config['matrix_seeds']} seeds.",
        header=("train dx \\ test dx", *(f"{d:+d}" for d in train_dx)),
        rows=tuple(
            (f"{t:+d}", *(f"{100 * _accuracy_by_seed(matrix, train_dx=t, test_dx=d, test_dy=0).mean():.1f}"
                          for d in train_dx))
            for t in train_dx),
    ))
    return out


def matrix_values(written: dict) -> tuple[list[int], np.ndarray]:
    matrix = [r for r in written["records"] if r["kind"] == "matrix" and not r["diverged"]]
    ticks = sorted({r["train_dx"] for r in matrix})
    values = np.array([[100 * _accuracy_by_seed(matrix, train_dx=t, test_dx=d, test_dy=0).mean() for d in ticks]
                       for t in ticks])
    return ticks, values


def write_figures(written: dict, out) -> None:
    k = written["config"]["max_shift"]
    ticks = list(range(-k, k + 1))
    grid = [r for r in written["records"] if r["kind"] == "grid"]
    for name in dict.fromkeys(r["model"] for r in grid):
        for fill in shifts.FILLS:
            values = np.array([[100 * _accuracy_by_seed(grid, model=name, fill=fill, test_dx=dx, test_dy=dy).mean()
                                for dx in ticks] for dy in ticks])
            plots.heatmap(values, ticks, ticks, out / f"grid_{_slug(name)}_{fill}.png", x_label="dx (px, + is right)",
                          y_label="dy (px, + is down)", title=f"{name}, {fill} fill: test accuracy (%)")
    train_ticks, values = matrix_values(written)
    plots.heatmap(values, train_ticks, train_ticks, out / "train_test_matrix.png", x_label="test dx (px)",
                  y_label="train dx (px)", title="Linear model: train shift × test shift, accuracy (%)")


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def main(argv=None) -> dict:
    config, out = experiment.parse_config(Config, QUICK, __doc__, argv)
    for value, name in ((config.max_shift, "max_shift"), (config.consistency_shift, "consistency_shift"),
                        (config.augment_shift, "augment_shift"), (config.tta_shift, "tta_shift")):
        shifts.check_offsets(value, data.IMAGE_SIZE, name)
    if config.max_shift < 3:
        raise ValueError("max_shift must be at least 3: the grid accuracy over ±3 px needs it.")
    dataset = data.load(config.dataset, source=config.source)
    split = experiment.training_split(config, dataset)
    timing = {}

    grid = experiment.tune_linear(config, split)
    hparams = grid.best
    (params, log), timing["linear: training"] = experiment.train_models(config, split, hparams)
    augment = functools.partial(shifts.random_shift, max_shift=config.augment_shift)
    (augmented, augmented_log), timing["linear + shift aug.: training"] = experiment.train_models(
        config, split, hparams, augment=augment)
    tta = invariance.averaged_over_shifts(linear.logits, *shifts.offset_grid(config.tta_shift))

    variants = [("linear", linear.logits, params, log), ("linear + TTA", tta, params, log),
                ("linear + shift aug.", linear.logits, augmented, augmented_log),
                ("linear + shift aug. + TTA", tta, augmented, augmented_log)]
    records = []
    for name, logits_fn, variant_params, variant_log in variants:
        if np.asarray(variant_log.diverged).any():
            raise FloatingPointError(f"{name}: seeds {np.nonzero(variant_log.diverged)[0]} diverged.")
        grid_records, metric_records = evaluate(name, logits_fn, variant_params, dataset.test, config, timing)
        records += [{"kind": "grid", **r} for r in grid_records] + [{"kind": "metric", **r} for r in metric_records]
    records += [{"kind": "matrix", **r} for r in shift_matrix(config, split, dataset.test, hparams, timing)]

    for phase, t in timing.items():
        print(f"{phase}: compile {t['compile_s']:.1f} s, run {t['run_s']:.1f} s")
    out.mkdir(parents=True, exist_ok=True)
    plots.templates(linear.templates(jax.tree.map(lambda p: p[0], augmented)), data.SOURCES[config.dataset].classes,
                    out / "templates_shift_augmented.png",
                    title=f"Templates after random-shift augmentation (±{config.augment_shift} px): blurred")
    written = experiment.write_outputs(
        out, experiment="translation", config=config, dataset=dataset, records=records, timing=timing,
        tuned={"learning_rate": hparams.learning_rate, "weight_decay": hparams.weight_decay})
    table_list = make_tables(written)
    experiment.write_tables(out, table_list)
    write_figures(written, out)
    print("\n".join(t.markdown() for t in table_list))
    return written


if __name__ == "__main__":
    main(sys.argv[1:])
