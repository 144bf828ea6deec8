"""Translation sensitivity: shift the test digits and watch the linear model collapse.

Run:
    python -m experiments.translation --out results/translation
    python -m experiments.translation --out /tmp/quick --quick     # seconds, as the tests run it

    # On a GPU, the CNN with full settings:
    python -m experiments.translation --out results/translation-gpu --cnn-seeds 10 --cnn-epochs 10 --matrix-cnn-seeds 5 \
        --cnn-eval-batch-size 200 --cnn-offsets-at-once 3

Runtime: the linear part takes 5.3 minutes on 2 CPU cores (measured); the small CNN's
grid adds about 0.1 ms per image and offset there, so the CPU defaults run for about
20 minutes (not run end to end). The GPU settings took 117 s on an H200 (measured).
Expected (MNIST, zero fill, mean over seeds): the linear model 92.6 % at 0 px; about 87 % at
1 px, 61–66 % at 2 px along an axis, about 40 % at 2 px on the diagonal and 13–25 % at 4 px.
Random-shift augmentation (±2 px) costs it about 5 points at 0 px and gains about 17 at 2 px.
The small CNN is far less sensitive (99.3 % at 0 px, 98.7 % at 1 px, 62 % at 4 px), and with
the same augmentation 96 % at 4 px.

Phases, each one compiled program, timed as compile + run:
1. the tuned linear model (the baseline's recipe and seeds), S seeds vmapped, and the
   small CNN (LeNet-5 layout, `cnn_seeds` seeds);
2. every test image at every offset of [-K, K]², both fill modes, all seeds at once;
3. invariance metrics: consistency under two random shifts in [-3, 3]² (Zhang 2019),
   P(top-1 change) under a 1-px shift (Azulay & Weiss 2019), grid accuracy over
   ±2 and ±3 px (Engstrom et al. 2019);
4. the train-shift × test-shift matrix: models trained on data shifted by a fixed
   dx in [-K, K] (train offsets × seeds vmapped), tested at every offset; the
   linear model re-learns each digit at each position (a band along the diagonal);
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
    cnn_seeds: int = 2  # the small CNN (LeNet-5 layout): CPU-sized
    cnn_epochs: int = 3
    cnn_tta: bool = False  # TTA multiplies the CNN's grid evaluation by (2·tta_shift + 1)²
    matrix_cnn_seeds: int = 0  # 0 leaves the CNN out of the train-shift matrix (CPU: ~0.1 ms per image and offset)
    cnn_eval_batch_size: int = 100
    cnn_offsets_at_once: int = 9
    test_examples: int = 0  # 0: all 10,000 test images; fewer only for quick runs


QUICK = {**experiment.QUICK_TRAINING, "matrix_seeds": 1, "max_shift": 3, "cnn_seeds": 1, "cnn_epochs": 1,
         "matrix_cnn_seeds": 1, "test_examples": 500}


def evaluate(name, logits_fn, params, test: data.Split, config: Config, timing: dict,
             batch_size: int, offsets_at_once: int | None = None) -> tuple[list, list]:
    """Grid records for both fills and metric records for one model variant (S seeds)."""
    dxs, dys = shifts.offset_grid(config.max_shift)
    images, labels = jnp.asarray(test.images), np.asarray(test.labels)
    grid_records, metric_records, zero_fill = [], [], None
    for fill in shifts.FILLS:
        preds, timing[f"{name}: shift grid, {fill}"] = experiment.compile_and_run(
            invariance.grid_predictions, params, images, dxs, dys,
            logits_fn=logits_fn, fill=fill, batch_size=batch_size, offsets_at_once=offsets_at_once)
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
        logits_fn=logits_fn, max_shift=config.consistency_shift, batch_size=batch_size)
    values = {
        "consistency": invariance.consistency(np.asarray(paired)),
        "top1_change_1px": invariance.top1_change(zero_fill, dxs, dys),
        "grid_accuracy_2px": invariance.grid_accuracy(zero_fill, labels, dxs, dys, 2),
        "grid_accuracy_3px": invariance.grid_accuracy(zero_fill, labels, dxs, dys, 3),
    }
    metric_records = [{"model": name, "seed": s, "metric": metric, "value": float(v[s])}
                      for metric, v in values.items() for s in range(len(v))]
    return grid_records, metric_records


def shift_matrix(name: str, model: models.Model, hparams, config: Config, train_config, seeds: int,
                 split: data.Split, test: data.Split, timing: dict, **eval_settings) -> list:
    """Records of `seeds` models trained at each fixed dx (dy = 0), tested on the whole grid (zero fill)."""
    train_dx = np.arange(-config.max_shift, config.max_shift + 1, dtype=np.int32)
    (params, log), timing[f"{name}: train-shift matrix, training"] = experiment.compile_and_run(
        invariance.train_shifted, experiment.seed_keys(config.seed, seeds), jnp.asarray(split.images),
        jnp.asarray(split.labels),
        jax.tree.map(jnp.float32, hparams), train_dx, np.zeros_like(train_dx), model=model, loss_fn=metrics.cross_entropy, config=train_config)
    t = len(train_dx)
    flat = jax.tree.map(lambda p: p.reshape(t * seeds, *p.shape[2:]), params)
    dxs, dys = shifts.offset_grid(config.max_shift)
    preds, timing[f"{name}: train-shift matrix, evaluation"] = experiment.compile_and_run(
        invariance.grid_predictions, flat, jnp.asarray(test.images), dxs, dys,
        logits_fn=model.logits, **eval_settings)
    accuracy = (np.asarray(preds) == test.labels).mean(-1).reshape(len(dxs), t, seeds)
    diverged = np.asarray(log.diverged)
    return [
        {"model": name, "seed": j, "train_dx": int(train_dx[i]), "train_dy": 0, "test_dx": int(dxs[o]),
         "test_dy": int(dys[o]), "fill": "zeros", "accuracy": float(accuracy[o, i, j]),
         "diverged": bool(diverged[i, j])}
        for i in range(t) for j in range(seeds) for o in range(len(dxs))
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
    signs = (-1, 1)
    offsets = {"x": {(s * k, 0) for s in signs}, "y": {(0, s * k) for s in signs},
               "diagonal": {(a * k, b * k) for a in signs for b in signs}}[direction]
    return {"test_offset": offsets}


def _with_offsets(records):
    return [{**r, "test_offset": (r["test_dx"], r["test_dy"])} for r in records]


def make_tables(written: dict) -> list[tables.Table]:
    """Every table, from the contents of results.json alone."""
    config = written["config"]
    grid = _with_offsets([r for r in written["records"] if r["kind"] == "grid"])
    matrix = [r for r in written["records"] if r["kind"] == "matrix"]
    metric_records = [r for r in written["records"] if r["kind"] == "metric"]
    names = list(dict.fromkeys(r["model"] for r in grid))
    k_max = config["max_shift"]
    cell = lambda values: tables.mean_std(stats.summarize(values), digits=1)  # noqa: E731

    seeds = {name: len({r["seed"] for r in grid if r["model"] == name}) for name in names}
    out = []
    for name in names:
        rows = []
        for k in range(k_max + 1):
            rows.append((f"{k} px", *(cell(_accuracy_by_seed(grid, model=name, fill=fill, **_along(d, k)))
                                      for fill in shifts.FILLS for d in ("x", "y", "diagonal"))))
        out.append(tables.Table(
            caption=f"Test accuracy (%) of {name} under test-time shifts, mean ± std over {seeds[name]} seeds.",
            header=("shift", *(f"{d}, {fill}" for fill in shifts.FILLS for d in ("x", "y", "diagonal"))),
            rows=tuple(rows),
            notes=("Along x: the mean over ±k px; diagonal: over the four (±k, ±k). zeros: vacated pixels "
                   "are 0 and content leaves the canvas; wrap: a circular roll.",),
        ))

    metric = lambda name, m: cell(np.array([r["value"] for r in metric_records  # noqa: E731
                                            if r["model"] == name and r["metric"] == m]))
    out.append(tables.Table(
        caption="Shift robustness and invariance metrics (%), zero fill, mean ± std over seeds.",
        header=("model", "seeds", *(f"{k} px" for k in range(k_max + 1)), "2 px diagonal", "consistency ↑",
                "P(top-1 change, 1 px) ↓", "grid acc. ±2 px", "grid acc. ±3 px"),
        rows=tuple(
            (name, str(seeds[name]),
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
               f"[-{config['augment_shift']}, {config['augment_shift']}]². The linear model uses the "
               f"baseline's tuned recipe ({config['epochs']} epochs); the small CNN (LeNet-5 layout) rate "
               f"{config['deep_learning_rate']:g}, decay {config['deep_weight_decay']:g}, {config['cnn_epochs']} "
               f"epochs. {written['test_images']:,} test images. "
               f"Ran on {experiment.machine(written['environment'])}.",),
    ))

    for name in dict.fromkeys(r["model"] for r in matrix):
        ticks, values = matrix_values(matrix, name)
        n = len({r["seed"] for r in matrix if r["model"] == name and not r["diverged"]})
        out.append(tables.Table(
            caption=f"Train-shift × test-shift: test accuracy (%) of the {name} trained on data shifted by "
                    f"train dx, tested at test dx (dy = 0, zero fill), mean over {n} seeds.",
            header=("train dx \\ test dx", *(f"{d:+d}" for d in ticks)),
            rows=tuple((f"{t:+d}", *(f"{v:.1f}" for v in row)) for t, row in zip(ticks, values)),
        ))
    return out


def matrix_values(matrix: list[dict], name: str) -> tuple[list[int], np.ndarray]:
    """(train dx ticks, mean accuracy (%) `(train dx, test dx)` at test dy = 0) of one model's matrix records."""
    matrix = [r for r in matrix if r["model"] == name and not r["diverged"]]
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
    matrix = [r for r in written["records"] if r["kind"] == "matrix"]
    for name in dict.fromkeys(r["model"] for r in matrix):
        train_ticks, values = matrix_values(matrix, name)
        plots.heatmap(values, train_ticks, train_ticks, out / f"train_test_matrix_{_slug(name)}.png",
                      x_label="test dx (px)", y_label="train dx (px)",
                      title=f"{name}: train shift × test shift, accuracy (%)")


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

    hparams = experiment.tune_linear(config, split).best
    cnn = models.get("cnn_small")
    cnn_config = dataclasses.replace(config, seeds=config.cnn_seeds, epochs=config.cnn_epochs)
    augment = functools.partial(shifts.random_shift, max_shift=config.augment_shift)
    tta_shifts = shifts.offset_grid(config.tta_shift)
    n_test = config.test_examples or None
    test = data.Split(dataset.test.images[:n_test], dataset.test.labels[:n_test])
    linear_eval = {"batch_size": config.eval_batch_size}
    cnn_eval = {"batch_size": config.cnn_eval_batch_size, "offsets_at_once": config.cnn_offsets_at_once}
    variants = []
    for name, model, run_config, run_hparams, with_tta, eval_settings in (
        ("linear", models.LINEAR, config, hparams, True, linear_eval),
        ("small CNN", cnn, cnn_config, config.deep_hparams, config.cnn_tta, cnn_eval),
    ):
        tta = invariance.averaged_over_shifts(model.logits, *tta_shifts)
        for aug_name, aug in (("", None), (" + shift aug.", augment)):
            (params, log), timing[f"{name}{aug_name}: training"] = experiment.train_models(
                run_config, split, run_hparams, model, augment=aug)
            variants.append((f"{name}{aug_name}", model.logits, params, log, eval_settings))
            if with_tta:
                variants.append((f"{name}{aug_name} + TTA", tta, params, log, eval_settings))
            if name == "linear" and aug is not None:
                augmented = params
    records = []
    for name, logits_fn, variant_params, variant_log, eval_settings in variants:
        if np.asarray(variant_log.diverged).any():
            raise FloatingPointError(f"{name}: seeds {np.nonzero(variant_log.diverged)[0]} diverged.")
        grid_records, metric_records = evaluate(name, logits_fn, variant_params, test, config, timing,
                                                **eval_settings)
        records += [{"kind": "grid", **r} for r in grid_records] + [{"kind": "metric", **r} for r in metric_records]
    records += [{"kind": "matrix", **r} for r in shift_matrix(
        "linear", models.LINEAR, hparams, config, config.train_config, config.matrix_seeds, split, test, timing,
        **linear_eval)]
    if config.matrix_cnn_seeds:
        records += [{"kind": "matrix", **r} for r in shift_matrix(
            "small CNN", cnn, config.deep_hparams, config, cnn_config.train_config, config.matrix_cnn_seeds, split,
            test, timing, **cnn_eval)]

    for phase, t in timing.items():
        print(f"{phase}: compile {t['compile_s']:.1f} s, run {t['run_s']:.1f} s")
    out.mkdir(parents=True, exist_ok=True)
    plots.templates(linear.templates(experiment.first_seed(augmented)), data.SOURCES[config.dataset].classes,
                    out / "templates_shift_augmented.png",
                    title=f"Templates after random-shift augmentation (±{config.augment_shift} px): blurred")
    return experiment.finish(
        out, make_tables=make_tables, write_figures=write_figures, experiment="translation", config=config,
        dataset=dataset, records=records, timing=timing, test_images=len(test.labels),
        results_file="results.json.gz",  # one record per model, seed, offset and fill: megabytes as text
        tuned=hparams._asdict())


if __name__ == "__main__":
    main(sys.argv[1:])
