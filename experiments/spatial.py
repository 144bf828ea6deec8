"""Where it breaks beyond translation: MNIST-C's spatial corruptions, the worst case over a spatial
grid, and the remedies of the literature, for every model of the ladder.

Run:
    python -m experiments.spatial --out results/spatial                  # the cpu preset
    python -m experiments.spatial --out results/spatial-fashion --dataset fashion_mnist
    python -m experiments.spatial --out /tmp/quick --preset quick        # under a minute, as the tests run it
    python -m experiments.spatial --out results/spatial-gpu --preset gpu # more seeds, epochs, larger CNN

Runtime (measured, 2 CPU cores, AMD EPYC, by `experiments.reproduce`): cpu 524 s on MNIST and 546 s on
Fashion-MNIST, wall clock (12 models; on MNIST, training takes 244 s of it, the MNIST-C points, corners
and 10 random draws 221 s and the exhaustive grid on the first 1,000 test images 47 s: a survivor must
be scored at all 775 points, so the grid on all 10,000, the gpu preset's, costs ten times that); quick
40 s cold, 13 s with JAX's compilation cache and the executable store filled
(`results/quick/reproduce.json`: cold). The gpu preset has not been run.
Expected (MNIST, cpu preset, all 10,000 test images, the grid on the first 1,000): the linear model
92.6 % clean, 44.8 % mean over MNIST-C's four corruptions (translate 29 %), 0.8 % worst of 10, 0 %
on the grid; with deskewing 95.7 % clean (LeCun et al. 1998: 88.0 -> 91.6 %), 71 % under MNIST-C
and 46 % on the grid; with centring 90.5 % under translate and 18 % on the grid. The small CNN:
99.0 % clean, 71 % under MNIST-C, 23 % worst of 10, 0 % on the grid; with MNIST-C augmentation 96 %
under MNIST-C at a cost of 0.2 points clean, where the linear model pays 7; with the worst case's own
family as augmentation 91 % worst of 10 and 51 % on the grid (the linear model: 16 % and 0.3 %, at
a cost of 12 points clean).

What is measured, per model (linear, MLP, small CNN, larger CNN) and remedy, S seeds vmapped:
1. MNIST-C (Mu & Gilmer 2019, "MNIST-C: A Robustness Benchmark for Computer Vision";
   google-research/mnist-c): rotate, shear, scale and translate at severities 1…5 on every test
   image, each image with its own random sign (`transforms.mnist_c_affine`). The translate column is
   checked against the shift grid's corners: the same models, every image shifted by exact integer
   indexing (`transforms.translate`, the translation experiment's path) to each (±c, ±c); each image's
   prediction under MNIST-C's translate must equal its prediction at the corner of its own signs.
2. The worst case (Engstrom et al. 2019, "Exploring the Landscape of Spatial Robustness"): rotation
   by ±30° about the centre, then translation by ±3 px, bilinear, zero fill. "Worst of 10 random": 10
   draws per image, uniform on the continuous ranges, every test image; "grid": all 5 × 5 × 31 points
   (their granularity) on the first `grid_examples` test images (0, the default: all), scored exactly
   by `evaluate.grid_worst_case`, which stops scoring an image once every seed has failed on it and
   tries the points farthest from the identity first (`hardest_first`). An image counts as correct only if it
   is correct under every transform tried.
3. Remedies: centring by centre of mass and deskewing (LeCun et al. 1998), built into the linear
   model as preprocessing of every image it trains on or is scored on (after the perturbation; the
   training images, unperturbed, are mapped once: `experiment.preprocess`);
   augmentation with random shifts (±`augment_shift` px), with the worst case's own family (random
   rotations and translations in its ranges, as Engstrom et al. augment) and with MNIST-C's
   (`transforms.random_mnist_c`), for the linear model and the small CNN. The clean column gives each
   remedy's cost at zero perturbation.

The MNIST-C points, the shift-grid corners and the 10 random draws are one compiled evaluation per
model (`evaluate.grid_outputs`, per-image parameters); the exhaustive grid is a second one
(`evaluate.grid_worst_case`).
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from mnist_linear import config as configs
from mnist_linear import (data, evaluate, experiment, invariance, models, plots, results, sharding, tables, tasks,
                          transforms)

field = configs.field
TASK = tasks.CLASSIFICATION
CORRUPTIONS = tuple(transforms.MNIST_C)
SEVERITIES = (1, 2, 3, 4, 5)
CORNERS = ((-1, -1), (1, -1), (-1, 1), (1, 1))  # (sign of dx, sign of dy)
VARIANT = ("model", "preprocess", "augment")  # the fields that name a model variant in the records
PLAIN_LINEAR = {"model": "linear", "preprocess": "none", "augment": "none"}
LITERATURE = (  # LeCun et al. 1998, "Gradient-based learning applied to document recognition", Fig. 9
    ("LeCun et al. 1998: linear classifier†", "88.0"),
    ("LeCun et al. 1998: linear classifier, deskewed†", "91.6"),
)


@dataclasses.dataclass(frozen=True)
class Config(configs.TrainingConfig):
    deep_seeds: int = field(2, "seeds of the MLP and CNNs")
    deep_epochs: int = field(3, "epochs of the MLP and CNNs")
    large_widths: tuple[int, ...] = field((8, 16), "channels of the larger CNN's two blocks")
    large_hidden: int = field(128, "width of the larger CNN's dense layer")
    augment_shift: int = field(2, "shift augmentation draws offsets in [-this, this]² px per image and step")
    max_shift: float = field(3.0, "the worst-case grid's translations lie in [-this, this] px (Engstrom: 3)")
    max_degrees: float = field(30.0, "the worst-case grid's rotations lie in [-this, this]° (Engstrom: 30)")
    grid_points: tuple[int, ...] = field((5, 5, 31), "points of the exhaustive grid along dx, dy, angle")
    random_tries: int = field(10, "random transforms per image of worst-of-k (Engstrom: 10)")
    grid_examples: int = field(0, "test images on the exhaustive grid (the first ones); 0: all")
    test_examples: int = field(0, "test images scored (the first ones); 0: all 10,000")
    eval_batch_size: int = field(500, "test images per evaluation chunk (linear)")
    grid_points_at_once: int = field(5, "grid points each linear model scores per image and step (exhaustive grid)")
    deep_eval_batch_size: int = field(50, "test images per evaluation chunk (MLP, CNNs)")
    deep_points_at_once: int = field(2, "grid points the MLP and CNNs evaluate at once (memory against speed)")

    PRESETS: ClassVar[dict] = {
        "quick": {**configs.QUICK_TRAINING, "deep_seeds": 1, "deep_epochs": 1, "large_widths": (4, 8),
                  "large_hidden": 16, "grid_points": (3, 3, 5), "test_examples": 200, "grid_examples": 50},
        # The exhaustive grid on the first 1,000 test images: a survivor costs all 775 points of it.
        "cpu": {"seeds": 5, "grid_examples": 1000},
        "gpu": {"deep_seeds": 5, "deep_epochs": 10, "large_widths": (32, 64), "large_hidden": 256,
                "deep_eval_batch_size": 500, "deep_points_at_once": 5},
    }

    def check(self) -> None:
        super().check()
        for name in ("deep_seeds", "deep_epochs", "large_hidden", "random_tries", "eval_batch_size",
                     "grid_points_at_once", "deep_eval_batch_size", "deep_points_at_once"):
            configs._at_least(name, getattr(self, name), 1)
        if min(self.large_widths) < 1:
            raise ValueError(f"large_widths must be ≥ 1, got {self.large_widths}.")
        if not 0 <= self.augment_shift < data.IMAGE_SIZE:
            raise ValueError(f"augment_shift must be in [0, {data.IMAGE_SIZE - 1}] px, got {self.augment_shift}.")
        if not 0 < self.max_shift < data.IMAGE_SIZE or not 0 < self.max_degrees <= 180:
            raise ValueError(f"max_shift must be in (0, {data.IMAGE_SIZE}) px and max_degrees in (0, 180], got "
                             f"{self.max_shift} and {self.max_degrees}.")
        if len(self.grid_points) != 3 or min(self.grid_points) < 1:
            raise ValueError(f"grid_points must be three counts ≥ 1 (dx, dy, angle), got {self.grid_points}.")
        for name in ("test_examples", "grid_examples"):
            if not 0 <= getattr(self, name) <= 10_000:
                raise ValueError(f"{name} must be in [0, 10000] (0: all), got {getattr(self, name)}.")
        if self.test_examples and self.grid_examples > self.test_examples:
            raise ValueError(f"grid_examples ({self.grid_examples}) must not exceed test_examples "
                             f"({self.test_examples}).")


POINT_TRANSFORM = transforms.each(transforms.translate_or_warp)  # per image: (matrix, offset, dx, dy, exact)


def evaluation_points(config: Config, num_images: int) -> tuple[tuple[np.ndarray, ...], dict]:
    """Per-image parameters `(P, N, ...)` of the one evaluation program: (matrix, offset, dx, dy, exact),
    and where each purpose sits among the P points: the clean point, MNIST-C's (corruption, severity)
    points, the shift grid's corners (c, sign of dx, sign of dy), and the random draws."""
    key = jax.random.fold_in(jax.random.key(config.seed), 3)  # the same draws for every model
    identity = np.broadcast_to(np.eye(2, dtype=np.float32), (num_images, 2, 2))
    zero, no_shift = np.zeros((num_images, 2), np.float32), np.zeros(num_images, np.int32)
    warped = np.zeros(num_images, bool)
    points = [(identity, zero, no_shift, no_shift, warped)]
    layout = {"clean": 0, "mnist_c": {}, "corners": {}}
    for i, corruption in enumerate(CORRUPTIONS):
        for severity in SEVERITIES:
            matrix, offset = transforms.mnist_c_affine(jax.random.fold_in(key, 10 * i + severity), num_images,
                                                       corruption, severity)
            layout["mnist_c"][corruption, severity] = len(points)
            points.append((np.asarray(matrix), np.asarray(offset), no_shift, no_shift, warped))
    for c in SEVERITIES:
        for sx, sy in CORNERS:
            layout["corners"][c, sx, sy] = len(points)
            points.append((identity, zero, np.full(num_images, sx * c, np.int32), np.full(num_images, sy * c, np.int32),
                           ~warped))
    draws = transforms.random_spatial(jax.random.fold_in(key, 100), config.random_tries, num_images,
                                      config.max_shift, config.max_degrees)
    matrices, offsets = (np.asarray(a) for a in transforms.rotate_translate_affine(*draws))
    layout["random"] = list(range(len(points), len(points) + config.random_tries))
    points += [(matrices[t], offsets[t], no_shift, no_shift, warped) for t in range(config.random_tries)]
    stacked = tuple(np.stack([p[j] for p in points]) for j in range(5))
    return stacked, layout


def hardest_first(grid: tuple[np.ndarray, ...], max_shift: float, max_degrees: float) -> tuple[np.ndarray, ...]:
    """The grid's points reordered, the farthest from the identity first (|dx|, |dy| and |angle| as
    fractions of their limits, summed): where an image is likeliest to fail, so that
    `evaluate.grid_worst_case` stops scoring it soonest. The order changes the cost, never the result."""
    distance = (np.abs(grid[0]) + np.abs(grid[1])) / max_shift + np.abs(grid[2]) / max_degrees
    order = np.argsort(-distance, kind="stable")
    return tuple(g[order] for g in grid)


def variant_records(tag: dict, classes: np.ndarray, grid_right: np.ndarray, grid_scored: float, labels: np.ndarray,
                    offsets: np.ndarray, layout: dict, failed: np.ndarray) -> list[dict]:
    """The records of one model variant from its classes `(P, S, N)` on the evaluation points and
    whether each of the first n test images is right at every point of the exhaustive grid `(S, n)`
    (`grid_scored`: the fraction of its image × point pairs that had to be scored); `tag` names the variant
    (`VARIANT`)."""
    correct = classes == labels  # (P, S, N)
    seeds = range(correct.shape[1])
    fail = lambda s: failed[s] or None  # noqa: E731
    records = [{"kind": "corruption", **tag, "seed": s, "corruption": "clean", "severity": 0,
                "accuracy": float(correct[layout["clean"], s].mean()), "failed": fail(s)} for s in seeds]
    records += [{"kind": "corruption", **tag, "seed": s, "corruption": corruption, "severity": severity,
                 "accuracy": float(correct[p, s].mean()), "failed": fail(s)}
                for (corruption, severity), p in layout["mnist_c"].items() for s in seeds]
    # MNIST-C's translate against the shift grid's corner of each image's own signs: the same prediction.
    for c in SEVERITIES:
        point = layout["mnist_c"]["translate", c]
        sx, sy = np.sign(-offsets[point, :, 0]).astype(int), np.sign(-offsets[point, :, 1]).astype(int)
        corner = np.array([layout["corners"][c, int(a), int(b)] for a, b in zip(sx, sy)])
        at_corner = classes[corner, :, np.arange(len(labels))].T  # (S, N)
        corner_points = [layout["corners"][c, a, b] for a, b in CORNERS]
        records += [{"kind": "translate_check", **tag, "seed": s, "severity": c,
                     "agreement": float((classes[point, s] == at_corner[s]).mean()),
                     "corner_accuracy": float(correct[corner_points, s].mean()), "failed": fail(s)} for s in seeds]
    worst = {"random": invariance.worst_of(classes[layout["random"]], labels),
             "grid": grid_right.mean(-1),
             "grid_clean": (classes[layout["clean"], :, : grid_right.shape[-1]] == labels[: grid_right.shape[-1]]
                            ).mean(-1)}
    records += [{"kind": "worst_case", **tag, "seed": s, "attack": attack, "accuracy": float(v[s]),
                 "failed": fail(s)} for attack, v in worst.items() for s in seeds]
    records.append({"kind": "grid_cost", **tag, "scored": grid_scored})
    return records


def main(argv=None) -> dict:
    run = experiment.start(Config, __doc__, argv)
    config, out, split = run.config, run.out, run.train_split
    n_test = config.test_examples or len(run.dataset.test.labels)
    n_grid = config.grid_examples or n_test
    test = data.Split(run.test_split.images[:n_test], run.test_split.labels[:n_test])
    grid_images, grid_labels = test.images[:n_grid], sharding.replicated(test.labels[:n_grid])  # for every model
    points, layout = evaluation_points(config, n_test)
    grid = hardest_first(transforms.spatial_grid(config.max_shift, config.max_degrees, config.grid_points),
                         config.max_shift, config.max_degrees)
    points, grid = sharding.replicated(points), sharding.replicated(grid)

    recipe = experiment.tune_linear(config, split)
    deep_config = dataclasses.replace(config, seeds=config.deep_seeds, epochs=config.deep_epochs)
    # (the per-image points' settings, the exhaustive grid's)
    deep = {"batch_size": config.deep_eval_batch_size, "points_at_once": config.deep_points_at_once}
    linear_eval = ({"batch_size": config.eval_batch_size, "models_at_once": config.models_at_once},
                   {"batch_size": config.eval_batch_size, "points_at_once": config.grid_points_at_once})
    deep_eval = ({**deep, "models_at_once": config.models_at_once}, deep)
    augmentations = {
        "none": None, "mnist_c": transforms.random_mnist_c,
        "shift": functools.partial(transforms.random_shift, max_shift=config.augment_shift),
        "rotate_translate": functools.partial(transforms.random_rotate_translate, max_shift=config.max_shift,
                                              max_degrees=config.max_degrees)}
    input_maps = {"centring": transforms.centre, "deskewing": transforms.deskew}
    cnn = models.get("cnn_small")
    variants = [  # (model name, preprocessing, augmentation, model, run config, hyperparameters, evaluation)
        *(("linear", p, a, models.LINEAR, config, recipe.best, linear_eval)
          for p, a in (("none", "none"), ("centring", "none"), ("deskewing", "none"), ("none", "shift"),
                       ("none", "rotate_translate"), ("none", "mnist_c"))),
        ("mlp", "none", "none", models.get("mlp"), deep_config, config.deep_hparams, deep_eval),
        *(("cnn_small", "none", a, cnn, deep_config, config.deep_hparams, deep_eval)
          for a in ("none", "shift", "rotate_translate", "mnist_c")),
        ("cnn_large", "none", "none", models.get("cnn_large", widths=config.large_widths, hidden=config.large_hidden),
         deep_config, config.deep_hparams, deep_eval),
    ]
    records, timing = [], {}
    offsets = np.asarray(points[1])
    for name, preprocess, augment, base, run_config, hparams, (eval_settings, grid_settings) in variants:
        tag = {"model": name, "preprocess": preprocess, "augment": augment}
        label = tables.variant_title(tag)
        model = base if preprocess == "none" else models.preprocessed(base, input_maps[preprocess])
        if preprocess != "none" and augment == "none":  # nothing random before the map: map the images once
            mapped, timing[f"{label}: mapping the training images"] = experiment.preprocess(split, input_maps[preprocess])
            trained = experiment.train_models(label, run_config, mapped, hparams, base)
        else:
            trained = experiment.train_models(label, run_config, split, hparams, model, augment=augmentations[augment])
        timing[f"{label}: training"] = trained.timing
        classes, timing[f"{label}: MNIST-C, corners, worst of {config.random_tries}"] = experiment.compile_and_run(
            evaluate.grid_outputs, trained.params, test.images, points, apply=model.logits,
            transform=POINT_TRANSFORM, reduce=TASK.reduce, per_example=True, **eval_settings)
        (grid_right, scored), timing[f"{label}: exhaustive grid"] = experiment.compile_and_run(
            evaluate.grid_worst_case, trained.params, grid_images, grid_labels, grid, apply=model.logits,
            transform=transforms.rotate_translate, **grid_settings)
        grid_scored = float(np.asarray(scored).mean() / len(grid[0]))
        print(f"{label}: the exhaustive grid scored {100 * grid_scored:.1f} % of its image × point pairs")
        records += variant_records(tag, np.asarray(classes), np.asarray(grid_right), grid_scored, test.labels,
                                   offsets, layout, trained.failed)
    for phase, t in timing.items():
        print(f"{phase}: compile {t['compile_s']:.1f} s, run {t['run_s']:.1f} s")

    out.mkdir(parents=True, exist_ok=True)
    write_strip(run.dataset, config, out / "examples.png")
    return experiment.finish(
        run, experiment="spatial", make_tables=make_tables, write_figures=write_figures, records=records,
        timing=timing, test_images=n_test, grid_images=n_grid, group=("kind", *VARIANT),
        linear_recipe=recipe.recipe())


def write_strip(dataset: data.Dataset, config: Config, path) -> None:
    """What was measured: test digits under each corruption at severities 0…5 (one row each), and under
    random draws of the worst-case family."""
    images = data.to_float(jnp.asarray(dataset.test.images[:1]))
    key = jax.random.fold_in(jax.random.key(config.seed), 4)
    rows = [[images[0], *(transforms.mnist_c(jax.random.fold_in(key, 10 * i + s), images, c, s)[0]
                          for s in SEVERITIES)] for i, c in enumerate(CORRUPTIONS)]
    draws = transforms.random_spatial(jax.random.fold_in(key, 100), len(SEVERITIES), 1, config.max_shift,
                                      config.max_degrees)
    rows.append([images[0], *transforms.each(transforms.rotate_translate)(
        jnp.repeat(images, len(SEVERITIES), 0), *(d[:, 0] for d in draws))])
    plots.digits(rows, path, row_labels=[*CORRUPTIONS, "worst-case family"], frame=True,
                 title=f"MNIST-C at severity 0 (clean) to 5; then random draws of ±{config.max_degrees:g}° and "
                       f"±{config.max_shift:g} px (Engstrom et al.)")


def severity_curve(records: list[dict], variant: dict, corruption: str) -> list[float]:
    """Mean accuracy (%) over seeds at severity 0 (clean), 1, …, 5; nan where every seed failed."""
    def mean(values):
        return 100 * values.mean() if len(values) else np.nan
    return [mean(results.per_seed(records, "accuracy", **variant, corruption="clean"))] + [
        mean(results.per_seed(records, "accuracy", **variant, corruption=corruption, severity=s)) for s in SEVERITIES]


def severity_mean(records: list[dict], variant: dict, corruption: str) -> np.ndarray:
    """Per-seed accuracy under `corruption`, averaged over severities 1…5 (MNIST-C's summary): `(S,)`,
    empty when every seed failed."""
    per_severity = [results.per_seed(records, "accuracy", **variant, corruption=corruption, severity=s)
                    for s in SEVERITIES]
    return np.mean(per_severity, axis=0) if all(len(v) for v in per_severity) else np.array([])


def corruption_mean(records: list[dict], variant: dict) -> np.ndarray:
    """Per-seed accuracy averaged over MNIST-C's four corruptions and their severities: `(S,)`, empty when
    every seed failed."""
    means = [severity_mean(records, variant, c) for c in CORRUPTIONS]
    return np.mean(means, axis=0) if all(len(m) for m in means) else np.array([])


def lowest_agreement(checks: list[dict], **equal) -> float:
    """The lowest fraction of images on which MNIST-C's translate and the shift grid's corner agree, over
    the matching models and seeds whose runs did not fail (nan when none is left)."""
    return min((r["agreement"] for r in results.select(checks, **equal) if not r["failed"]), default=np.nan)


def make_tables(written: dict) -> list[tables.Table]:
    """Every table, from the contents of results.json alone."""
    config, records = written["config"], written["records"]
    corrupted = results.select(records, kind="corruption")
    worst = results.select(records, kind="worst_case")
    checks = results.select(records, kind="translate_check")
    variants = results.distinct(corrupted, VARIANT)
    cell = lambda values: tables.mean_std_of(values, digits=1)  # noqa: E731
    acc = lambda rs, **k: results.per_seed(rs, "accuracy", **k)  # noqa: E731

    seeds = {tables.variant_title(v): len(acc(corrupted, **v, corruption="clean")) for v in variants}
    failures = tables.failure_note(results.select(corrupted, corruption="clean"), tables.variant_title)
    machine = f"Ran on {tables.machine(written['environment'])}."
    lowest = lowest_agreement(checks)
    agreed = "all" if lowest == 1 else f"at least {100 * lowest:.2f} % of the"
    n_test, n_grid = written["test_images"], written["grid_images"]
    recipe = (f"{tables.recipe_note(written['linear_recipe'], config)} (the raw images' recipe, for every linear "
              f"variant); MLP and CNNs: rate {config['deep_learning_rate']:g}, decay {config['deep_weight_decay']:g}, "
              f"{tables.counted(config['deep_epochs'], 'epoch')}. Larger CNN: widths "
              f"{tuple(config['large_widths'])}, dense "
              f"{config['large_hidden']}.")
    out = [tables.Table(
        caption=f"MNIST-C's spatial corruptions on {config['dataset']}: test accuracy (%), mean over severities 1–5, "
                "mean ± std over seeds.",
        header=("model", "seeds", "clean", *CORRUPTIONS, "mean of the four"),
        rows=tuple((tables.variant_title(v), str(seeds[tables.variant_title(v)]),
                    cell(acc(corrupted, **v, corruption="clean")),
                    *(cell(severity_mean(corrupted, v, c)) for c in CORRUPTIONS), cell(corruption_mean(corrupted, v)))
                   for v in variants),
        notes=(f"Mu & Gilmer 2019 (MNIST-C), their conventions: about the centre (13.5, 13.5), bilinear, zero fill, "
               f"clipped; rotate and shear ±0.2…1.0 rad, scale 0.9…0.5, translate (±1…±5, ±1…±5) px, a random sign "
               f"per image. {n_test:,} test images, the same draws for every model. Checked: under translate, "
               f"every model's prediction equals its prediction at the shift grid's corner of the image's signs "
               f"(exact integer shifts) for {agreed} images. "
               f"{recipe} {failures}{machine}",),
    )]
    for corruption in CORRUPTIONS:
        magnitudes = ", ".join(f"{m:g}" for m in transforms.MNIST_C[corruption])
        out.append(tables.Table(
            caption=f"MNIST-C's {corruption} on {config['dataset']}: test accuracy (%) against severity, mean ± std "
                    "over seeds.",
            header=("model", "0 (clean)", *(str(s) for s in SEVERITIES)),
            rows=tuple((tables.variant_title(v), cell(acc(corrupted, **v, corruption="clean")),
                        *(cell(acc(corrupted, **v, corruption=corruption, severity=s)) for s in SEVERITIES))
                       for v in variants),
            notes=(f"Severity 1…5: {magnitudes} "
                   f"({'rad' if corruption in ('rotate', 'shear') else 'px' if corruption == 'translate' else 'zoom'}).",),
        ))
    if checks:
        out.append(tables.Table(
            caption=f"MNIST-C's translate against the shift grid's corners on {config['dataset']}, all models and "
                    "seeds.",
            header=("severity c", "same prediction (min over models and seeds, %)", "translate accuracy (%)",
                    "corner accuracy, mean of (±c, ±c) (%)"),
            rows=tuple((str(c), f"{100 * lowest_agreement(checks, severity=c):.2f}",
                        cell(acc(corrupted, **PLAIN_LINEAR, corruption="translate", severity=c)),
                        cell(results.per_seed(checks, "corner_accuracy", **PLAIN_LINEAR, severity=c)))
                       for c in SEVERITIES),
            notes=("Accuracies of the linear model. Same prediction: the fraction of images whose prediction under "
                   "MNIST-C's translate (bilinear warp at integer offsets) equals the prediction at the corner of "
                   "their own signs, shifted by `transforms.translate` (the translation experiment's path).",),
        ))
    g = config["grid_points"]
    subset = n_grid < n_test  # the grid on the first n_grid images only: their clean accuracy beside it
    scored = [r["scored"] for r in results.select(records, kind="grid_cost")]
    cost = (f" Scored exactly, each image until every seed has failed on it (the points farthest from the identity "
            f"first): {100 * min(scored):.1f}–{100 * max(scored):.1f} % of the image × point pairs, by model."
            if scored else "")
    out.append(tables.Table(
        caption=f"The worst case over rotations of ±{config['max_degrees']:g}° and translations of "
                f"±{config['max_shift']:g} px on {config['dataset']} (Engstrom et al. 2019): accuracy (%), "
                "mean ± std over seeds.",
        header=("model", "clean", f"worst of {config['random_tries']} random",
                *([f"clean, first {n_grid:,}"] if subset else []), grid_header(written)),
        rows=tuple((tables.variant_title(v), cell(acc(corrupted, **v, corruption="clean")),
                    cell(acc(worst, **v, attack="random")),
                    *([cell(acc(worst, **v, attack="grid_clean"))] if subset else []),
                    cell(acc(worst, **v, attack="grid"))) for v in variants),
        notes=(f"Rotation about the centre, then translation; bilinear, zero fill. Worst of {config['random_tries']}: "
               f"an image counts if it is classified correctly under all {config['random_tries']} draws (uniform on "
               f"the ranges, per image), over all {n_test:,} test images. Grid: correct at every one of the "
               f"{g[0] * g[1] * g[2]} grid points, over "
               + (f"the first {n_grid:,} test images (their clean accuracy beside it)." if subset
                  else f"all {n_grid:,} test images.") + f"{cost} {machine}",),
    ))
    out.append(remedies_table(written, variants, corrupted, worst))
    return out


def grid_header(written: dict) -> str:
    """The one header of the exhaustive grid's accuracy, in every table: its size and, when it is scored on
    fewer images than the rest, on how many."""
    g, n_grid = written["config"]["grid_points"], written["grid_images"]
    return f"grid ({g[0]}×{g[1]}×{g[2]})" + (f", first {n_grid:,}" if n_grid < written["test_images"] else "")


def remedies_table(written: dict, variants: list[dict], corrupted: list[dict], worst: list[dict]) -> tables.Table:
    """Each remedy beside its model without it: the cost at zero perturbation and what it buys."""
    config = written["config"]
    acc = lambda rs, **k: results.per_seed(rs, "accuracy", **k)  # noqa: E731
    cell = lambda values: tables.mean_std_of(values, digits=1)  # noqa: E731

    def gain(variant, values_of):
        base = values_of({**variant, "preprocess": "none", "augment": "none"})
        mine = values_of(variant)
        return f"{100 * (mine.mean() - base.mean()):+.1f}" if len(base) and len(mine) else "—"

    clean = lambda v: acc(corrupted, **v, corruption="clean")  # noqa: E731
    random = lambda v: acc(worst, **v, attack="random")  # noqa: E731
    plain = lambda v: v["preprocess"] == v["augment"] == "none"  # noqa: E731
    with_remedies = {v["model"] for v in variants if not plain(v)}
    rows = [(tables.variant_title(v), cell(clean(v)), "—" if plain(v) else gain(v, clean),
             cell(severity_mean(corrupted, v, "translate")), cell(severity_mean(corrupted, v, "rotate")), cell(random(v)),
             cell(acc(worst, **v, attack="grid")))
            for v in variants if v["model"] in with_remedies]
    if config["dataset"] == "mnist":
        rows += [(name, accuracy, "—", "—", "—", "—", "—") for name, accuracy in LITERATURE]
    return tables.Table(
        caption=f"Remedies on {config['dataset']}: accuracy (%) clean, under MNIST-C's translate and rotate (mean over "
                f"severities), worst of {config['random_tries']} random and on the exhaustive grid, mean ± std over "
                "seeds.",
        header=("model", "clean", "cost at zero perturbation (pts)", "translate", "rotate",
                f"worst of {config['random_tries']} random", grid_header(written)),
        rows=tuple(rows),
        notes=("Centring: each image shifted by whole pixels to put its centre of mass at the centre (MNIST's own "
               "preprocessing); deskewing: sheared to zero second-moment skew and centred (LeCun et al. 1998). Both "
               "act on every image the model trains on and on every perturbed test image. Shift aug.: random shifts "
               f"in [-{config['augment_shift']}, {config['augment_shift']}]² px; rotation/translation aug.: a random "
               f"rotation in ±{config['max_degrees']:g}° and translation in ±{config['max_shift']:g} px per image "
               "(the worst case's family); MNIST-C aug.: each training image "
               "left as it is or given one of MNIST-C's four corruptions at a random severity. Cost at zero "
               "perturbation: clean accuracy minus the same model's without the remedy.",
               *(["† Reported in the literature (accuracy = 100 − error; 12.0 and 8.4 % error), not run here."]
                 if config["dataset"] == "mnist" else [])),
    )


def reading(written: dict) -> list[str]:
    """What the tables show, in 3–5 sentences made from the results file alone (numbers through
    `results.per_seed` and the tables' formatting): how far MNIST-C's spatial corruptions pull the linear
    model down and whether the other models keep more, who survives the exhaustive worst case, and which
    remedy helps the linear model most and at what clean cost."""
    config, records = written["config"], written["records"]
    corrupted = results.select(records, kind="corruption")
    worst = results.select(records, kind="worst_case")
    variants = results.distinct(corrupted, VARIANT)
    cell = lambda values: tables.stated(values, digits=1)  # noqa: E731
    clean = lambda v: results.per_seed(corrupted, "accuracy", **v, corruption="clean")  # noqa: E731
    four = lambda v: corruption_mean(corrupted, v)  # noqa: E731
    on_grid = lambda v: results.per_seed(worst, "accuracy", **v, attack="grid")  # noqa: E731
    moves = ("rises by {} pts", "falls by {} pts", "stays level")
    out = []
    if len(four(PLAIN_LINEAR)):
        each = {c: severity_mean(corrupted, PLAIN_LINEAR, c) for c in CORRUPTIONS}
        hardest = min(each, key=lambda c: each[c].mean())
        falls = tables.change(clean(PLAIN_LINEAR), four(PLAIN_LINEAR), digits=1, words=moves)
        out.append(f"Under MNIST-C's {tables.listed(CORRUPTIONS)} (the mean over severities and corruptions), the "
                   f"linear model {falls}, from {cell(clean(PLAIN_LINEAR))} clean to {cell(four(PLAIN_LINEAR))}; it "
                   f"does worst under {hardest} ({cell(each[hardest])}).")
        others = [v for v in variants if v["model"] != "linear" and v["preprocess"] == v["augment"] == "none"
                  and len(four(v))]
        versus = {tables.variant_title(v): tables.compare(four(PLAIN_LINEAR), four(v), digits=1) for v in others}
        standings = tables.standings(versus, "the linear model")
        if others:
            out.append("The other models without remedies score " + tables.listed(
                f"{tables.variant_title(v)} {cell(four(v))}" for v in others) + " under the same corruptions: " + (
                f"every one {standings[0][0]}" if len(standings) == 1 and len(others) > 1 else
                "; ".join(f"{tables.listed(names)} {head}" for head, names in standings))
                + tables.unchecked(versus.values()) + ".")
    scored = [v for v in variants if len(on_grid(v))]
    if PLAIN_LINEAR in scored:
        best = max(scored, key=lambda v: on_grid(v).mean())
        images = "" if written["grid_images"] == written["test_images"] else f" (the first {written['grid_images']:,})"
        out.append(f"On the exhaustive grid of rotations (±{config['max_degrees']:g}°) and translations "
                   f"(±{config['max_shift']:g} px), where an image counts only if it is right at every point, the "
                   f"linear model keeps {cell(on_grid(PLAIN_LINEAR))} of the test images{images}; the best, "
                   f"{tables.variant_title(best)}, keeps {cell(on_grid(best))}.")
    remedies = [v for v in variants if v["model"] == "linear" and v != PLAIN_LINEAR and len(four(v))]
    if remedies and len(clean(PLAIN_LINEAR)):
        best = max(remedies, key=lambda v: four(v).mean())
        cost = tables.change(clean(PLAIN_LINEAR), clean(best), digits=1, words=moves)
        out.append(f"Of the linear model's remedies, {tables.variant_title(best)} does best under MNIST-C "
                   f"({cell(four(best))}); against the linear model without it, its clean accuracy {cost}.")
    return out + tables.failed_models(results.select(corrupted, corruption="clean"), tables.variant_title, VARIANT)


def write_figures(written: dict, out) -> None:
    corrupted = results.select(written["records"], kind="corruption")
    panels = {c: {tables.variant_title(v): severity_curve(corrupted, v, c) for v in results.distinct(corrupted, VARIANT)}
              for c in CORRUPTIONS}
    plots.line_panels([0, *SEVERITIES], panels, out / "severity.png", x_label="severity (0: clean)",
                      y_label="test accuracy (%)", columns=2,
                      title=f"MNIST-C's spatial corruptions on {written['config']['dataset']}, mean over seeds")


if __name__ == "__main__":
    main(sys.argv[1:])
