"""One template per class: give each class k templates and let the best one speak.

Run:
    python -m experiments.templates --out results/templates               # the cpu preset (also gpu)
    python -m experiments.templates --out /tmp/quick --preset quick      # seconds, as the tests run it

Runtime (2 CPU cores, AMD EPYC, measured): cpu (3 seeds, 10 epochs) 71 s; quick 4 s cold, 1 s with
JAX's compilation cache and the executable store filled (`results/quick/reproduce.json`: cold).
Expected (MNIST, logsumexp): 92.6 % at k = 1, 95.2 % at k = 2, 96.0–96.2 % at k = 4–8,
no better at 16; max is 0.3–1 point lower. Only 2–3 templates per class end up
in use whatever k is (about 2 with max); those of 4 and 7 split into styles (open and closed 4s,
slanted and upright 7s).

The class logit is the logsumexp (a soft maximum) or the max of the class's k
template scores; both are trained with the linear recipe, tuned on validation for k = 1.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import ClassVar

import jax
import numpy as np

from mnist_linear import config as configs
from mnist_linear import data, evaluate, experiment, models, plots, results, tables, tasks

field = configs.field

REDUCTIONS = ("logsumexp", "max")


@dataclasses.dataclass(frozen=True)
class Config(configs.TrainingConfig):
    seeds: int = field(3, "models per k and reduction (independent seeds, one vmapped program)")
    ks: tuple[int, ...] = field((1, 2, 4, 8, 16), "templates per class")
    figure_k: int = field(8, "the k whose templates the figure draws (one of ks)")
    figure_digits: tuple[int, ...] = field((4, 7), "the digits whose templates the figure draws")

    PRESETS: ClassVar[dict] = {"quick": {**configs.QUICK_TRAINING, "ks": (1, 4), "figure_k": 4}, "cpu": {}, "gpu": {}}

    def check(self) -> None:
        super().check()
        if min(self.ks) < 1:
            raise ValueError(f"ks must be ≥ 1, got {self.ks}.")
        if self.figure_k not in self.ks:
            raise ValueError(f"figure_k={self.figure_k} must be one of ks={self.ks}.")
        if not all(0 <= d < data.NUM_CLASSES for d in self.figure_digits):
            raise ValueError(f"figure_digits must be classes in [0, {data.NUM_CLASSES - 1}], got {self.figure_digits}.")


def template_images(params, k: int) -> np.ndarray:
    """The templates of one model `(classes, k, 28, 28)` (the Dense kernel is `(784, classes·k)`)."""
    kernel = np.asarray(params["Dense_0"]["kernel"])
    return kernel.T.reshape(-1, k, data.IMAGE_SIZE, data.IMAGE_SIZE)


def template_usage(params, k: int, test: data.Split) -> np.ndarray:
    """Fraction of each class's test images on which each of its templates scores highest: `(classes, k)`."""
    x = test.images.reshape(len(test.labels), -1).astype(np.float32) / 255
    scores = (x @ np.asarray(params["Dense_0"]["kernel"]) + np.asarray(params["Dense_0"]["bias"]))
    winner = scores.reshape(len(x), -1, k)[np.arange(len(x)), test.labels].argmax(-1)
    return np.stack([np.bincount(winner[test.labels == c], minlength=k) / (test.labels == c).sum()
                     for c in range(scores.shape[1] // k)])


def main(argv=None) -> dict:
    run = experiment.start(Config, __doc__, argv)
    config, out, dataset, split, test = run.config, run.out, run.dataset, run.train_split, run.test_split
    recipe = experiment.tune_linear(config, split)
    timing, records, drawn = {}, [], None
    for reduce in REDUCTIONS:
        for k in config.ks:
            model = models.get("templates", k=k, reduce=reduce)
            trained = experiment.train_models(f"k={k}, {reduce}", config, split, recipe.best, model)
            timing[f"k={k}, {reduce}"] = trained.timing
            params = jax.device_get(trained.params)
            in_use = np.array([(template_usage(jax.tree.map(lambda p: p[s], params), k, dataset.test)
                                >= 0.01).sum(-1).mean() for s in range(config.seeds)])
            classes, timing[f"k={k}, {reduce}: evaluation"] = experiment.compile_and_run(
                evaluate.seed_outputs, trained.params, test.images, apply=model.logits,
                reduce=tasks.CLASSIFICATION.reduce, models_at_once=config.models_at_once)
            records += results.seed_records(
                trained.failed, model="templates", k=k, reduce=reduce,
                parameters=models.parameter_count(experiment.first_seed(params)),
                test_accuracy=(np.asarray(classes) == test.labels).mean(-1), templates_in_use=in_use)
            if reduce == "logsumexp" and k == config.figure_k:
                drawn = experiment.good_seed(params, trained.failed)
    out.mkdir(parents=True, exist_ok=True)
    usage = None
    if drawn is not None:  # a failed model is never drawn as if it were fine
        seed, figure_params = drawn
        usage = template_usage(figure_params, config.figure_k, dataset.test)
        images = template_images(figure_params, config.figure_k)
        digits = list(config.figure_digits)
        labels = [f"{d} · {100 * usage[d, j]:.0f}%" for d in digits for j in range(config.figure_k)]
        plots.templates(images[digits].reshape(-1, *images.shape[2:]), labels, out / "templates_k.png",
                        columns=config.figure_k,
                        title=f"The {config.figure_k} templates of " + " and of ".join(map(str, digits))
                              + f" (logsumexp, seed {seed}) and the share of that digit's test images each one wins")
        results.save_params(out / "figure_params.npz", figure_params)
    return experiment.finish(
        run, experiment="templates", make_tables=make_tables, records=records, timing=timing,
        group=("k", "reduce"), template_usage=None if usage is None else usage.tolist(),
        linear_recipe=recipe.recipe())


def _run_title(record: dict) -> str:
    return f"k = {record['k']}, {record['reduce']}"


def _cell(records: list[dict], k: int, reduce: str) -> str:
    accuracy = results.per_seed(records, "test_accuracy", k=k, reduce=reduce)
    if not len(accuracy):
        return tables.EVERY_RUN_FAILED
    in_use = results.per_seed(records, "templates_in_use", k=k, reduce=reduce).mean()
    return f"{tables.mean_std_of(accuracy)} ({in_use:.1f} in use)"


def make_tables(written: dict) -> list[tables.Table]:
    config, records = written["config"], written["records"]
    rows = []
    for k in config["ks"]:
        params = next(r["parameters"] for r in records if r["k"] == k)
        rows.append((str(k), f"{params:,}", *(_cell(records, k, reduce) for reduce in REDUCTIONS)))
    return [tables.Table(
        caption=f"k templates per class: test accuracy (%), mean ± std over "
                f"{tables.counted(config['seeds'], 'seed')}.",
        header=("k", "parameters", "logsumexp over templates", "max over templates"),
        rows=tuple(rows),
        notes=("In use: templates that score highest on at least 1% of their class's test images, mean over "
               "classes and seeds. The highest-scoring template of a class takes most of its gradient (all of it, "
               "with max), so templates that start behind can stay unused.",
               f"{tables.recipe_note(written['linear_recipe'], config)}; every k is trained with it, and k = 1 "
               "is the linear model. "
               f"{tables.failure_note(records, _run_title)}"
               f"Ran on {tables.machine(written['environment'])}.",),
    )]


def reading(written: dict) -> list[str]:
    """What the table shows, in 2–5 sentences made from the results file alone (numbers through
    `results.per_seed` and the tables' formatting): whether more templates per class beat the one template
    of the linear model, where the accuracy peaks, how many templates end up in use, and max against logsumexp."""
    ks, records = written["config"]["ks"], written["records"]
    acc = {(k, reduce): results.per_seed(records, "test_accuracy", k=k, reduce=reduce)
           for k in ks for reduce in REDUCTIONS}
    first, largest = min(ks), max(ks)
    out = [f"Test accuracy at k = {first}{' (one template per class: the linear model)' if first == 1 else ''}, "
           f"logsumexp over templates: {tables.stated(acc[first, 'logsumexp'])}."]
    trained = [k for k in ks if len(acc[k, "logsumexp"])]
    best = max(trained, key=lambda k: acc[k, "logsumexp"].mean(), default=first)
    if first in trained and best == first and len(trained) > 1:
        out.append("No larger k has a higher mean with logsumexp.")
    elif first in trained and best != first:
        versus = tuple(f"{word} k = {first}" for word in ("{} pts above", "{} pts below", "level with"))
        out.append(f"The best logsumexp mean is at k = {best}: {tables.stated(acc[best, 'logsumexp'])}, "
                   + tables.change(acc[first, "logsumexp"], acc[best, "logsumexp"], words=versus) + ".")
        if largest in trained and best != largest:
            out.append(f"At k = {largest} it " + tables.change(
                acc[best, "logsumexp"], acc[largest, "logsumexp"],
                words=("rises by {} pts more", "falls back by {} pts", "stays level")) + ".")
    in_use = {reduce: results.per_seed(records, "templates_in_use", k=largest, reduce=reduce) for reduce in REDUCTIONS}
    if largest > 1 and all(len(v) for v in in_use.values()):
        used = {reduce: float(v.mean()) for reduce, v in in_use.items()}  # formatted as the table's cells are
        only = "only " if max(used.values()) < largest else ""
        out.append(f"Of the {largest} templates per class at k = {largest}, {only}{used['logsumexp']:.1f} are in use "
                   f"with logsumexp and {used['max']:.1f} with max.")
    against = {k: tables.compare(acc[k, "logsumexp"], acc[k, "max"]) for k in ks}
    if standings := tables.standings(against, "logsumexp"):
        out.append("Max over templates is " + "; ".join(f"{head} at k = {tables.listed(map(str, k))}"
                                                        for head, k in standings)
                   + tables.unchecked(against.values()) + ".")
    return out + tables.failed_models(records, lambda r: f"k = {r['k']} with {r['reduce']}", ("k", "reduce"))


if __name__ == "__main__":
    main(sys.argv[1:])
