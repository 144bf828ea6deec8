"""Regression with the classifier's pipeline: T linear outputs and mean squared error, three problems.

Run:
    python -m experiments.regression --out results/regression                     # the cpu preset
    python -m experiments.regression --out results/regression-fashion --dataset fashion_mnist \\
        --problems keypoint quality
    python -m experiments.regression --out /tmp/quick --preset quick              # seconds, as the tests run it

Runtime (2 CPU cores, AMD EPYC, measured): cpu 2.4 min on MNIST (plus about 40 s, the first time
only, to measure the thickness and slant of 30,000 digits, then cached), 2.8 min on Fashion-MNIST
(keypoint, quality); quick 29 s cold (measuring its 3,000 digits too, the first time only), 6 s with
JAX's compilation cache and the executable store filled (`results/quick/reproduce.json`: cold).
Expected (MNIST, cpu preset, R² on all 10,000 test images): keypoint linear 0.92 (x) / 0.91 (y),
small CNN 0.99; quality linear 0.60, CNN 0.93; thickness linear 0.77, CNN 0.96; slant linear 0.91,
CNN 0.98. Shifted 3 px, the linear quality regressor falls to R² −0.12 (worse than predicting the
mean) while the CNN keeps 0.90.

For each problem of `regression.PROBLEMS` (keypoint: the (x, y) of a digit's centre of mass on a
40 × 40 canvas; quality: a 0–10 score of known blur and noise; morphometry: Morpho-MNIST's stroke
thickness and slant, MNIST only): targets standardised with training-split statistics; a
predict-the-training-mean baseline; the linear regressor (its learning rate and weight decay tuned on
a validation split, as the classifier's) and the small CNN (the fixed deep setting), `seeds` models
each, vmapped; MAE, RMSE and R² on the test images in the targets' units. The shift-invariant
problems (quality, morphometry) are also scored on test images shifted by up to `max_shift` px
along each axis, through the same compiled grid sweep as the classifiers. Only the head (T outputs)
and the loss (MSE) differ from the classifier: the loop, tuning and evaluation are the same code.
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
from mnist_linear import (data, evaluate, experiment, linear, models, plots, regression, results, sharding, tables,
                          transforms)

field = configs.field

TITLES = {**tables.TITLES, "mean": "predict the training mean"}
# What a shift of d px is in the shift table and the reading: the R² averaged over (±d, 0) and (0, ±d).
ALONG_AN_AXIS = "along an axis (the mean over the four directions)"
SHIFTS = {fill: functools.partial(transforms.translate, fill=fill) for fill in transforms.FILLS}  # made once: jit keys on them


@dataclasses.dataclass(frozen=True)
class Config(configs.TrainingConfig):
    problems: tuple[str, ...] = field(tuple(regression.PROBLEMS), "regression problems to run (regression.PROBLEMS)")
    seeds: int = field(3, "models per problem and model (independent seeds, one vmapped program)")
    epochs: int = field(5, "training epochs")
    train_examples: int = field(20_000, "training images used (the first ones); 0: all")
    test_examples: int = field(0, "test images scored (the first ones); 0: all 10,000")
    learning_rates: tuple[float, ...] = field((0.003, 0.01, 0.03, 0.1), "the linear regressor's tuning grid of rates")
    weight_decays: tuple[float, ...] = field((0.0, 1e-3, 1e-2, 1e-1), "the linear regressor's tuning grid of L2 decays")
    max_shift: int = field(3, "test-time shifts of 0..max_shift px along each axis (shift-invariant problems)")
    cnn_eval_batch_size: int = field(500, "test images per evaluation step of the CNN")
    # Measured on the cpu preset's training loss (standardised MSE): the classifiers' 0.05 leaves every CNN
    # seed at chance (2.0 for keypoint, 1.0 for quality); at 0.01 one of three quality seeds ends at 0.42
    # where the others reach 0.05; at 0.003 all three end between 0.06 and 0.07.
    deep_learning_rate: float = field(0.003, "learning rate of the small CNN (one fixed setting)")

    PRESETS: ClassVar[dict] = {
        "quick": {**configs.QUICK_TRAINING, "epochs": 3, "train_examples": 2000, "num_validation": 500,
                  "test_examples": 1000, "learning_rates": (0.01, 0.03), "weight_decays": (0.0, 1e-3),
                  "max_shift": 2},
        "cpu": {},
        "gpu": {"seeds": 10, "epochs": 15, "train_examples": 0},
    }

    def check(self) -> None:
        super().check()
        for name in self.problems:
            configs._one_of("problems", name, tuple(regression.PROBLEMS))
        if len(set(self.problems)) != len(self.problems):
            raise ValueError(f"problems must not repeat, got {self.problems}.")
        if "morphometry" in self.problems and self.dataset != "mnist":
            raise ValueError("morphometry measures pen strokes (Morpho-MNIST), which only mnist has; pass "
                             "--problems keypoint quality for other datasets.")
        if not 0 <= self.test_examples <= 10_000:
            raise ValueError(f"test_examples must be in [0, 10000], got {self.test_examples}.")
        if not 0 <= self.max_shift < 10:
            raise ValueError(f"max_shift must be in [0, 9] px, got {self.max_shift}.")
        configs._at_least("cnn_eval_batch_size", self.cnn_eval_batch_size, 1)


def shift_grid(max_shift: int) -> tuple[np.ndarray, np.ndarray]:
    """Shifts along each axis, (0, 0) first and once: (dx, dy), each int32 `(4·max_shift + 1,)`."""
    d = np.arange(-max_shift, max_shift + 1)
    d = d[d != 0]
    dx = np.concatenate([[0], d, np.zeros_like(d)]).astype(np.int32)
    dy = np.concatenate([[0], np.zeros_like(d), d]).astype(np.int32)
    return dx, dy


def score_records(problem: regression.Problem, model: str, predicted: np.ndarray, targets: np.ndarray,
                  failed, **fields) -> list[dict]:
    """One record per seed and target: MAE, RMSE, R² in the target's units. predicted `(S, N, T)`."""
    scored = regression.scores(predicted, targets)
    return [record | {"target": target, "units": units, **{k: float(v[s, t]) for k, v in scored.items()}}
            for t, (target, units) in enumerate(zip(problem.target_names, problem.units))
            for s, record in enumerate(results.seed_records(failed, kind="test", problem=problem.name,
                                                            model=model, **fields))]


def main(argv=None) -> dict:
    run = experiment.start(Config, __doc__, argv)
    config, out = run.config, run.out
    n_test = config.test_examples or len(run.test_split.labels)
    test_images = data.Split(run.test_split.images[:n_test], run.test_split.labels[:n_test])
    grid = shift_grid(config.max_shift)
    grid_on_device = sharding.replicated(grid)
    records, recipes, timing, standardisation = [], {}, {}, {}
    for name in config.problems:
        problem = regression.PROBLEMS[name]
        # A stream apart from the models' keys, fixed per problem whichever others run beside it.
        data_key = jax.random.fold_in(jax.random.key(config.seed), 100 + list(regression.PROBLEMS).index(name))
        train = problem.make(jax.random.fold_in(data_key, 0), run.train_split)
        test = problem.make(jax.random.fold_in(data_key, 1), test_images)
        targets = np.asarray(test.targets, np.float64)
        scale = regression.Standardisation.of(train.targets)
        standardisation[name] = {"mean": scale.mean.tolist(), "std": scale.std.tolist()}
        fit = train._replace(targets=jnp.asarray(scale.apply(train.targets)))
        size = fit.images.shape[-1]

        records += score_records(problem, "mean", np.broadcast_to(scale.mean, (1, *targets.shape)), targets,
                                 [""])
        recipe = experiment.tune_linear(config, fit, problem.task)
        recipes[name] = recipe.recipe()
        predictions = {}
        for model_name, hparams in (("linear", recipe.best), ("cnn_small", config.deep_hparams)):
            model = models.get(model_name, size, problem.task.num_outputs)
            trained = experiment.train_models(f"{name}: {model_name}", config, fit, hparams, model, problem.task)
            timing[f"{name}: {model_name}"] = trained.timing
            batch = {"batch_size": config.cnn_eval_batch_size} if model_name != "linear" else {}
            batch["models_at_once"] = config.models_at_once
            if problem.shift_fill:  # one sweep over the shift grid; its first point, (0, 0), is the test set
                shifted, timing[f"{name}: {model_name}: evaluation"] = experiment.compile_and_run(
                    evaluate.grid_outputs, trained.params, test.images, grid_on_device, apply=model.logits,
                    transform=SHIFTS[problem.shift_fill], reduce=problem.task.reduce,
                    points_at_once=None if model_name == "linear" else 1, linear_transform=model_name == "linear",
                    **batch)
                shifted = scale.invert(shifted)  # (P, S, N, T)
                predicted = shifted[0]
                r2 = regression.scores(shifted, targets)["r2"]  # (P, S, T)
                records += [{"kind": "shift", "problem": name, "model": model_name, "target": target,
                             "fill": problem.shift_fill,
                             "seed": s, "dx": int(grid[0][p]), "dy": int(grid[1][p]), "r2": float(r2[p, s, t]),
                             "failed": trained.failed[s] or None}
                            for p in range(len(grid[0])) for s in range(config.seeds)
                            for t, target in enumerate(problem.target_names)]
            else:
                predicted, timing[f"{name}: {model_name}: evaluation"] = experiment.compile_and_run(
                    evaluate.seed_outputs, trained.params, test.images, apply=model.logits,
                    reduce=problem.task.reduce, **batch)
                predicted = scale.invert(predicted)
            records += score_records(problem, model_name, predicted, targets, trained.failed)
            drawn = experiment.good_seed(trained.params, trained.failed)
            if drawn is not None:
                predictions[model_name] = predicted[drawn[0]]
                if model_name == "linear":
                    plots.templates(linear.templates(drawn[1], (size, size)), problem.target_names,
                                    out / f"templates-{name}.png",
                                    title=f"The linear regressor's weights, {name} (seed {drawn[0]}): standardised "
                                          "target per unit of intensity")
        if predictions:
            plots.scatter([{"title": f"{name}: {target}", "units": units, "true": targets[:, t],
                            "predicted": {TITLES[m]: p[:, t] for m, p in predictions.items()}}
                           for t, (target, units) in enumerate(zip(problem.target_names, problem.units))],
                          out / f"scatter-{name}.png", title=f"{name} on {config.dataset}: test images")

    return experiment.finish(
        run, experiment="regression", make_tables=make_tables, write_figures=write_figures, records=records,
        group=("problem", "model"), linear_recipe=recipes, standardisation=standardisation, timing=timing,
        summary={"train_examples": len(run.train_split.labels), "test_examples": n_test},
        settings={"canvas": regression.CANVAS, "max_blur": regression.MAX_BLUR, "max_noise": regression.MAX_NOISE})


def _cell(values: np.ndarray, decimals: int | None = None) -> str:
    """'0.756 ± 0.001': the mean to 3 significant digits (or `decimals`), the std to as many decimals;
    the value alone for one (the mean predictor)."""
    if not values.size:
        return tables.EVERY_RUN_FAILED
    mean = values.mean()
    if decimals is None:
        decimals = max(0, 2 - int(np.floor(np.log10(abs(mean))))) if mean else 3
    return f"{mean:.{decimals}f}" + (f" ± {values.std(ddof=1):.{decimals}f}" if values.size > 1 else "")


def _title(record: dict) -> str:
    return f"{record['problem']}: {TITLES[record['model']]}"


def _rows(records: list[dict]):
    """(problem, target, units, model) in the order first recorded."""
    return dict.fromkeys((r["problem"], r["target"], r["units"], r["model"]) for r in records)


def make_tables(written: dict) -> list[tables.Table]:
    """The scores table and the shift table, from the contents of results.json alone."""
    config, records = written["config"], written["records"]
    tested = results.select(records, kind="test")
    rows = []
    for problem, target, units, model in _rows(tested):
        mine = dict(problem=problem, target=target, model=model)
        rows.append((problem, f"{target} ({units})", TITLES[model],
                     *(_cell(results.per_seed(tested, key, **mine)) for key in ("mae", "rmse")),
                     _cell(results.per_seed(tested, "r2", **mine), 3)))
    recipes = "; ".join(f"{name}: rate {r['learning_rate']:g}, decay {r['weight_decay']:g}"
                        + (tables.ON_EDGE if r["on_edge"] else "") for name, r in written["linear_recipe"].items())
    summary, settings = written["summary"], written["settings"]
    described = {
        "keypoint": f"keypoint: the centre of mass of a digit at a random place on a {settings['canvas']} × "
                    f"{settings['canvas']} canvas",
        "quality": f"quality: 10 · (1 − (σ/{settings['max_blur']:g} px + s/{settings['max_noise']:g}) / 2) for a "
                   "Gaussian blur σ and noise std s",
        "morphometry": "morphometry: thickness and slant as Morpho-MNIST (Castro et al. 2019) measures them",
    }
    problems = "; ".join(described[name] for name in config["problems"])
    score_table = tables.Table(
        caption=f"Regression on {config['dataset']}: {summary['test_examples']:,} test images, mean ± std over "
                f"{tables.counted(config['seeds'], 'seed')}, in each target's units.",
        header=("problem", "target (units)", "model", "MAE", "RMSE", "R²"),
        rows=tuple(rows),
        notes=(f"Trained on {summary['train_examples']:,} images with standardised targets (mean and std over all "
               f"of them, the validation rows included), {tables.counted(config['epochs'], 'epoch')} of SGD (momentum "
               f"{config['momentum']}, batch {config['batch_size']}, {config['schedule']} schedule), loss MSE. The "
               f"linear regressor's rate and decay were tuned on the last {config['num_validation']:,} training "
               f"images over rates {tables.grid_values(config['learning_rates'])} × decays "
               f"{tables.grid_values(config['weight_decays'])} "
               f"({recipes}); the small CNN: rate {config['deep_learning_rate']:g}, decay "
               f"{config['deep_weight_decay']:g}. R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ)² over the test images (0: the "
               f"test mean). {problems[0].upper()}{problems[1:]}. {tables.failure_note(tested, _title)}"
               f"Ran on {tables.machine(written['environment'])}.",))
    shifted = results.select(records, kind="shift")
    if not shifted:
        return [score_table]
    distances = range(config["max_shift"] + 1)
    shift_rows = []
    for problem, target, _, model in _rows(results.select(tested, where=lambda r: r["model"] != "mean")):
        mine = dict(problem=problem, target=target, model=model)
        if not results.select(shifted, **mine):
            continue
        shift_rows.append((problem, target, TITLES[model], *(
            _cell(results.per_seed(shifted, "r2", where=lambda r, d=d: max(abs(r["dx"]), abs(r["dy"])) == d, **mine),
                  3) for d in distances)))
    shift_table = tables.Table(
        caption=f"R² under test-time shifts on {config['dataset']}: the image shifted d px {ALONG_AN_AXIS}, "
                "mean ± std over seeds. The targets do not change with the shift.",
        header=("problem", "target", "model", *(f"d = {d} px" for d in distances)),
        rows=tuple(shift_rows),
        notes=("Every shifted test image through one compiled sweep per model (evaluate.grid_outputs). Quality: a "
               "circular shift (wrap fill), so a degraded image keeps all of its noise; morphometry: zero fill, so no "
               "ink is carried round into a new stroke (regression.Problem.shift_fill). "
               f"{tables.failure_note(shifted, _title)}".rstrip(),))
    return [score_table, shift_table]


def _outputs(targets: list[tuple[str, str]]) -> str:
    """The linear head's outputs T of each problem, one per target: '2 for keypoint (x, y) and 1 for quality
    (score)'."""
    names = {problem: [t for p, t in targets if p == problem] for problem, _ in targets}
    return tables.listed(f"{len(n)} for {problem} ({', '.join(n)})" for problem, n in names.items())


def reading(written: dict) -> list[str]:
    """What the tables show, in 2–5 sentences made from the results file alone (numbers through
    `results.per_seed` and the tables' formatting): the linear regression head's R² on each target, whether it
    beats predicting the training mean and whether the small CNN beats it, and how far R² falls under a shift
    that leaves the targets unchanged."""
    records = written["records"]
    tested = results.select(records, kind="test")
    r2 = lambda chosen, problem, target, model, **more: results.per_seed(  # noqa: E731
        chosen, "r2", problem=problem, target=target, model=model, **more)
    targets = list(dict.fromkeys((r["problem"], r["target"]) for r in tested))
    linear = {t: r2(tested, *t, "linear") for t in targets}
    reached = tables.listed(f"{_cell(linear[t], 3)} on {' '.join(t)}" for t in targets if len(linear[t]))
    out = [f"With one linear output per target ({_outputs(targets)}) and mean squared error in place of the "
           f"softmax, the linear model reaches R² {reached}."] if reached else []
    for rival, versus in (("mean", "predicting the training mean"), ("cnn_small", tables.model_name("cnn_small"))):
        against = {t: tables.compare(r2(tested, *t, rival), linear[t], scale=1, digits=3) for t in targets}
        standings, unknown = tables.standings(against, f"that of {versus}"), tables.unchecked(against.values())
        if len(standings) == 1:
            out.append(f"Its R² is {standings[0][0]} on every target scored{unknown}.")
        elif standings:
            out.append("Its R² is " + tables.listed(f"{head} on {len(scored)}" for head, scored in standings)
                       + f" of the {sum(len(scored) for _, scored in standings)} targets scored{unknown}.")
    shifted = results.select(records, kind="shift")
    distance = lambda r: max(abs(r["dx"]), abs(r["dy"]))  # noqa: E731
    farthest = max(map(distance, shifted), default=0)
    at = lambda d: lambda r: distance(r) == d  # noqa: E731
    for model in dict.fromkeys(r["model"] for r in shifted):
        mine = list(dict.fromkeys((r["problem"], r["target"]) for r in shifted if r["model"] == model))
        far = {t: r2(shifted, *t, model, where=at(farthest)) for t in mine}
        far = {t: v for t, v in far.items() if len(v)}
        if not far:
            continue
        low = min(far, key=lambda t: far[t].mean())
        to = _cell(far[low], 3) + (" (below zero: worse than predicting the mean)"
                                   if round(far[low].mean(), 3) < 0 else "")
        moved = tables.change(r2(shifted, *low, model, where=at(0)), far[low], scale=1, digits=3,
                              words=(f"rises by {{}} to {to}", f"falls by {{}} to {to}", f"stays level at {to}"))
        out.append(f"Shifted {farthest} px {ALONG_AN_AXIS}, which leaves every target as it was, the R² of "
                   f"{tables.model_name(model)} on {' '.join(low)}, its lowest, {moved}.")
    return out + tables.failed_models(tested, _title, ("problem", "model"))


def write_figures(written: dict, out) -> None:
    shifted = results.select(written["records"], kind="shift")
    if not shifted:
        return
    distances = list(range(written["config"]["max_shift"] + 1))
    series = {}
    for problem, target, model in dict.fromkeys((r["problem"], r["target"], r["model"]) for r in shifted):
        series[f"{problem}: {target}, {TITLES[model]}"] = [
            np.mean(results.per_seed(shifted, "r2", where=lambda r, d=d: max(abs(r["dx"]), abs(r["dy"])) == d,
                                     problem=problem, target=target, model=model)) for d in distances]
    plots.lines(distances, series, out / "shift.png", x_label="shift along an axis (px)", y_label="test R²",
                title="Regressors under test-time shifts")


if __name__ == "__main__":
    main(sys.argv[1:])
