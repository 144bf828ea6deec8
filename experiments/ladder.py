"""The ladder: linear -> MLP -> small CNN -> larger CNN, each step tested against the last.

Run:
    python -m experiments.ladder --out results/ladder                   # the cpu preset
    python -m experiments.ladder --out /tmp/quick --preset quick        # seconds, as the tests run it
    python -m experiments.ladder --out results/ladder-gpu --preset gpu  # the committed GPU tables

Runtime (measured): gpu 150 s on an NVIDIA H200; cpu 228 s and quick 17 s cold, 6 s with JAX's
compilation cache and the executable store filled (`results/quick/reproduce.json`: cold), on 2 CPU cores
(AMD EPYC).
Expected (MNIST, GPU settings, 10 seeds, measured): linear 92.66 %, MLP 98.13 %, small CNN
99.27 %, larger CNN 99.39 %, each step significant (p from 1e-28 to 5e-5). The cpu preset
(3 seeds, 3 epochs, larger CNN widths (8, 16)) gives 92.59, 96.98, 98.95 and 98.77 %: its larger
CNN does not beat the small one, and one of its seeds stays at chance (a failed run, reported).

The linear model is tuned on a validation split (the linear recipe, recorded with
its grid in results.json and named in the table note); the MLP and CNNs use one fixed
SGD setting (`deep_learning_rate`, `deep_weight_decay`), all with momentum 0.9, batch
100 and a cosine schedule. Significance: Welch's
two-sided t-test on the per-seed test accuracies of consecutive steps.
The antipattern: the same models trained on only `small_data_examples` images.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import ClassVar

import numpy as np

from mnist_linear import config as configs
from mnist_linear import data, evaluate, experiment, models, plots, results, stats, tables, tasks

field = configs.field

# Reference rows, from the literature (MNIST's), not run here.
LITERATURE = {
    "mnist": (
        ("LeCun et al. 1998: 2-layer net, 300 hidden units†", "238,510", "95.30"),
        ("LeCun et al. 1998: LeNet-5†", "60,000", "99.05"),
    ),
    "fashion_mnist": (),
}



@dataclasses.dataclass(frozen=True)
class Config(configs.TrainingConfig):
    seeds: int = field(3, "models per step (independent seeds, one vmapped program)")
    epochs: int = field(3, "training epochs of every step")
    large_widths: tuple[int, ...] = field((8, 16), "channels of the larger CNN's two blocks")
    large_hidden: int = field(128, "width of the larger CNN's dense layer")
    small_data_examples: int = field(500, "training images of the antipattern (the first ones)")
    small_data_epochs: int = field(100, "epochs of the antipattern")
    alpha: float = field(0.05, 'significance level of "beats the previous step"')

    PRESETS: ClassVar[dict] = {
        "quick": {**configs.QUICK_TRAINING, "small_data_examples": 200, "small_data_epochs": 30,
                  "large_widths": (4, 8), "large_hidden": 16},
        "cpu": {},
        "gpu": {"seeds": 10, "epochs": 15, "large_widths": (32, 64), "large_hidden": 256},
    }

    def check(self) -> None:
        super().check()
        for name in ("large_hidden", "small_data_epochs"):
            configs._at_least(name, getattr(self, name), 1)
        if min(self.large_widths) < 1:
            raise ValueError(f"large_widths must be ≥ 1, got {self.large_widths}.")
        if not self.batch_size <= self.small_data_examples <= (self.train_examples or 60_000):
            raise ValueError(f"small_data_examples must be between batch_size ({self.batch_size}) and the "
                             f"training images used, got {self.small_data_examples}.")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}.")


def ladder_models(config: Config) -> dict[str, models.Model]:
    return {"linear": models.LINEAR, "mlp": models.get("mlp"), "cnn_small": models.get("cnn_small"),
            "cnn_large": models.get("cnn_large", widths=config.large_widths, hidden=config.large_hidden)}


def accuracy(model: models.Model, params, split: data.Split, models_at_once: int) -> np.ndarray:
    """Accuracy of each of the S models on every image of `split`: `(S,)`."""
    classes, _ = experiment.compile_and_run(evaluate.seed_outputs, params, split.images, apply=model.logits,
                                            reduce=tasks.CLASSIFICATION.reduce, models_at_once=models_at_once)
    return (np.asarray(classes) == np.asarray(split.labels)).mean(-1)


def main(argv=None) -> dict:
    run = experiment.start(Config, __doc__, argv)
    config, out, split, test = run.config, run.out, run.train_split, run.test_split
    small = data.Split(split.images[: config.small_data_examples], split.labels[: config.small_data_examples])
    small_config = dataclasses.replace(config, epochs=config.small_data_epochs)
    recipe = experiment.tune_linear(config, split)
    timing, records = {}, []
    for name, model in ladder_models(config).items():
        hparams = recipe.best if name == "linear" else config.deep_hparams
        trained = experiment.train_models(name, config, split, hparams, model)
        timing[name] = trained.timing
        records += results.seed_records(
            trained.failed, kind="ladder", model=name,
            parameters=models.parameter_count(experiment.first_seed(trained.params)),
            test_accuracy=accuracy(model, trained.params, test, config.models_at_once),
            train_s=trained.timing["run_s"] / config.seeds)
        print(f"{name}: trained in {trained.timing['run_s']:.1f} s (+{trained.timing['compile_s']:.1f} s compile)")
        if name == "mlp":
            continue  # the antipattern compares the linear model with the CNNs
        trained = experiment.train_models(f"{name} on {len(small.labels)} images", small_config, small, hparams, model)
        timing[f"{name}, {len(small.labels)} images"] = trained.timing
        records += results.seed_records(
            trained.failed, kind="small_data", model=name,
            train_accuracy=accuracy(model, trained.params, small, config.models_at_once),
            test_accuracy=accuracy(model, trained.params, test, config.models_at_once))

    out.mkdir(parents=True, exist_ok=True)
    return experiment.finish(
        run, experiment="ladder", make_tables=make_tables, write_figures=write_figures, records=records,
        timing=timing, group=("kind", "model"), linear_recipe=recipe.recipe())


def significance(written: dict) -> list[dict]:
    """For each step after the first: mean gain over the previous step and Welch's p-value."""
    ladder = results.select(written["records"], kind="ladder")
    names = list(dict.fromkeys(r["model"] for r in ladder))
    rows = []
    for previous, current in zip(names, names[1:]):
        a = results.per_seed(ladder, "test_accuracy", model=previous)
        b = results.per_seed(ladder, "test_accuracy", model=current)
        if len(a) < 2 or len(b) < 2:
            rows.append({"model": current, "gain": None, "p_value": None, "beats_previous": None})
            continue
        p = stats.welch_t_test(b, a)
        rows.append({"model": current, "gain": b.mean() - a.mean(), "p_value": p,
                     "beats_previous": bool(b.mean() > a.mean() and p < written["config"]["alpha"])})
    return rows


def make_tables(written: dict) -> list[tables.Table]:
    """The ladder and the antipattern tables, from the contents of results.json alone."""
    config, records = written["config"], written["records"]
    ladder = results.select(records, kind="ladder")
    tests = {row["model"]: row for row in significance(written)}
    rows = []
    for name in dict.fromkeys(r["model"] for r in ladder):
        accuracy = results.per_seed(ladder, "test_accuracy", model=name)
        step = tests.get(name)
        verdict = "—" if step is None else "— (fewer than 2 seeds left)" if step["p_value"] is None else (
            f"{'yes' if step['beats_previous'] else 'no'}: {100 * step['gain']:+.2f} pts, p = {step['p_value']:.1g}")
        params = next(r["parameters"] for r in ladder if r["model"] == name)
        train_s = np.mean([r["train_s"] for r in ladder if r["model"] == name])
        rows.append((tables.TITLES[name], f"{params:,}", tables.mean_std_of(accuracy),
                     tables.interval(stats.summarize(accuracy)) if len(accuracy) else "—", f"{train_s:.1f} s", verdict))
    literature = LITERATURE[config["dataset"]]
    rows += [(name, n, acc, "—", "—", "—") for name, n, acc in literature]
    small = results.select(records, kind="small_data")
    small_rows = []
    for name in dict.fromkeys(r["model"] for r in small):
        train_acc = results.per_seed(small, "train_accuracy", model=name)
        test_acc = results.per_seed(small, "test_accuracy", model=name)
        runs = sum(r["model"] == name for r in small)
        cells = [tables.mean_std_of(v) for v in (train_acc, test_acc, train_acc - test_acc)]
        small_rows.append((tables.TITLES[name], f"{len(train_acc)} of {runs}", *cells))
    return [
        tables.Table(
            caption=f"The ladder on {config['dataset']}: test accuracy (%) over all 10,000 test images, "
                    f"mean ± std over {tables.counted(config['seeds'], 'seed')}.",
            header=("model", "parameters", "test accuracy (%)", "95% CI of accuracy (%)", "train time per seed",
                    f"beats the previous step (Welch's t-test, α = {config['alpha']})"),
            rows=tuple(rows),
            notes=(f"{tables.counted(config['epochs'], 'epoch')} of SGD (momentum {config['momentum']}, "
                   f"batch {config['batch_size']}, "
                   f"{config['schedule']}). {tables.recipe_note(written['linear_recipe'], config)}; "
                   f"the others: rate {config['deep_learning_rate']:g}, decay {config['deep_weight_decay']:g}. "
                   f"Larger CNN: widths {tuple(config['large_widths'])}, dense {config['large_hidden']}. "
                   f"{tables.INTERVAL_NOTE} {tables.failure_note(ladder, lambda r: tables.TITLES[r['model']])}"
                   f"Ran on {tables.machine(written['environment'])}.",
                   *(["† Reported in the literature (accuracy = 100 − error), not run here."] if literature else []))),
        tables.Table(
            caption=f"The antipattern: trained on only {config['small_data_examples']} images "
                    f"({tables.counted(config['small_data_epochs'], 'epoch')}), accuracy (%), mean ± std over "
                    f"{tables.counted(config['seeds'], 'seed')}.",
            header=("model", "seeds kept", "train accuracy", "test accuracy", "gap (train − test)"),
            rows=tuple(small_rows),
            notes=("A seed is left out when its run failed; its record stays in results.json. "
                   f"{tables.failure_note(small, lambda r: tables.TITLES[r['model']])}".rstrip(),)),
    ]


def reading(written: dict) -> list[str]:
    """What the two tables show, in 3–5 sentences made from the results file alone (numbers through
    `results.per_seed` and the tables' formatting; the verdicts are `significance`'s, the table's own Welch
    test): each step's test accuracy, whether every step beats the one before, and the antipattern's gaps."""
    config, records = written["config"], written["records"]
    ladder = results.select(records, kind="ladder")
    names = list(dict.fromkeys(r["model"] for r in ladder))
    lost = len(results.failed(ladder))
    accuracy = {n: results.per_seed(ladder, "test_accuracy", model=n) for n in names}
    left_out = f" ({tables.counted(lost, 'failed run')} left out)" if lost else ""
    out = [f"Test accuracy over {tables.counted(config['seeds'], 'seed')}{left_out}: "
           + tables.listed(f"{tables.TITLES[n]} {tables.stated(a)}" for n, a in accuracy.items() if len(a)) + "."
           ] if any(len(a) for a in accuracy.values()) else []
    steps = significance(written)
    verdicts = {True: ("beats", "beat"), False: ("does not beat", "do not beat"),
                None: ("cannot be tested against", "cannot be tested against")}
    named = {verdict: [tables.TITLES[step["model"]] + (" (fewer than 2 seeds left)" if verdict is None else
                       f" ({100 * step['gain']:+.2f} pts, p = {step['p_value']:.1g})")
                       for step in steps if step["beats_previous"] is verdict] for verdict in verdicts}
    if steps:
        out.append(f"By Welch's t-test at α = {config['alpha']}, " + "; ".join(
            f"{tables.listed(models)} {verdicts[verdict][len(models) > 1]} the step before it"
            for verdict, models in named.items() if models) + ".")
        out.append(f"So the ladder {' < '.join(tables.TITLES[n] for n in names)} " + (
            "cannot be checked at every step." if named[None] else "does not hold at every step." if named[False]
            else "holds at every step."))
    small = results.select(records, kind="small_data")
    gaps = {n: results.per_seed(small, "train_accuracy", model=n) - results.per_seed(small, "test_accuracy", model=n)
            for n in dict.fromkeys(r["model"] for r in small)}
    gaps = {n: gap for n, gap in gaps.items() if len(gap)}
    if len(gaps) > 1:
        widest = max(gaps, key=lambda n: gaps[n].mean())
        others = {n: tables.compare(gap, gaps[widest]) for n, gap in gaps.items() if n != widest}
        close = [tables.TITLES[n] for n, c in others.items() if tables.rank(c) != tables.RANKS[0]]
        out.append(f"Trained on only {config['small_data_examples']} images, the train − test gap is widest for "
                   f"{tables.model_name(widest)} ({tables.stated(gaps[widest], ' pts')}), against " + tables.listed(
                       f"{tables.TITLES[n]} {tables.stated(gaps[n], ' pts')}" for n in others)
                   + (f"; {tables.listed(close)} {tables.WITHIN_SPREAD} of it" if close else "")
                   + f"{tables.unchecked(others.values())}.")
    on_few = f" on {config['small_data_examples']} images"
    return out + tables.failed_models(
        records, lambda r: tables.TITLES[r["model"]] + ("" if r["kind"] == "ladder" else on_few), ("kind", "model"))


def write_figures(written: dict, out) -> None:
    ladder = results.select(written["records"], kind="ladder")
    names = list(dict.fromkeys(r["model"] for r in ladder))
    plots.points([tables.TITLES[n] for n in names],
                 [100 * results.per_seed(ladder, "test_accuracy", model=n) for n in names],  # failed runs left out
                 out / "ladder.png", y_label="test accuracy (%)",
                 title=f"The ladder: one point per seed ({tables.counted(written['config']['seeds'], 'seed')})")


if __name__ == "__main__":
    main(sys.argv[1:])
