"""The linear softmax baseline: tune on validation, train S seeds, report the test set.

Run:
    python -m experiments.baseline --out results/baseline                       # the cpu preset
    python -m experiments.baseline --out results/baseline-fashion --dataset fashion_mnist
    python -m experiments.baseline --out /tmp/quick --preset quick             # seconds, as the tests run it

Runtime (2 CPU cores, AMD EPYC, measured): cpu 18 s (MNIST; 20 s Fashion-MNIST); quick 3 s cold, 1 s
with JAX's compilation cache and the executable store filled (`results/quick/reproduce.json`: cold). The
gpu preset is the cpu one.
Expected: MNIST test accuracy 92.6 ± 0.05 % (error 7.4 %); Fashion-MNIST 84.6 ± 0.1 %.

Steps: (1) a learning-rate × weight-decay grid, trained on the first 50,000
training images and scored on the last 10,000; (2) the best point (mean
validation accuracy) trains `seeds` models on all 60,000 images, vmapped;
(3) every model is scored on all 10,000 test images.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import ClassVar

import jax
import numpy as np

from mnist_linear import config as configs
from mnist_linear import data, evaluate, experiment, linear, models, plots, results, stats, tables, tasks

# Reference rows, from the literature, not run here.
LITERATURE = {
    "mnist": (
        ("LeCun et al. 1998: linear classifier†", "7,850", "12.0"),
        ("LeCun et al. 1998: pairwise linear classifier, deskewing†", "—", "7.6"),
    ),
    "fashion_mnist": (),
}


@dataclasses.dataclass(frozen=True)
class Config(configs.TrainingConfig):
    PRESETS: ClassVar[dict] = {"quick": configs.QUICK_TRAINING, "cpu": {}, "gpu": {}}


def make_tables(written: dict) -> list[tables.Table]:
    """The baseline table, from the contents of results.json alone."""
    config, summary, timing, records = written["config"], written["summary"], written["timing"], written["records"]
    accuracy = results.per_seed(records, "test_accuracy")
    failed = len(records) - len(accuracy)
    kept = tables.counted(len(accuracy), "seed") + (f", {failed} failed" if failed else "")
    interval = tables.interval(stats.summarize(accuracy)) if len(accuracy) else "—"
    return [tables.Table(
        caption=f"Linear softmax on {config['dataset']}: all {summary['test_examples']:,} test images, "
                "mean ± std over seeds.",
        header=("model", "parameters", "test accuracy (%)", "test error (%)", "95% CI of accuracy (%)",
                "train time"),
        rows=(
            (f"linear softmax, ours ({kept})", f"{summary['parameters']:,}", tables.mean_std_of(accuracy),
             tables.mean_std_of(1 - accuracy), interval,
             f"{timing['run_s']:.1f} s for all seeds (+{timing['compile_s']:.1f} s compile)"),
            *((name, n, "—", err, "—", "—") for name, n, err in LITERATURE[config["dataset"]]),
        ),
        notes=(
            f"{tables.recipe_note(written['linear_recipe'], config)} (the validation split: the last "
            f"{config['num_validation']:,} training images); SGD, momentum {config['momentum']}, batch "
            f"{config['batch_size']}, {config['schedule']} schedule, {summary['train_examples']:,} training images. "
            f"{tables.INTERVAL_NOTE} {tables.failure_note(records)}Ran on {tables.machine(written['environment'])}.",
            *(["† Reported in the literature (error only), not run here."] if LITERATURE[config["dataset"]] else []),
        ),
    )]


def reading(written: dict) -> list[str]:
    """What the baseline table shows, in 2–4 sentences made from the results file alone (numbers through
    `results.per_seed` and the tables' formatting; the literature's from `LITERATURE`): the tuned linear
    softmax's test accuracy, the reference every later model must beat, and its error against the literature's."""
    config, records = written["config"], written["records"]
    accuracy = results.per_seed(records, "test_accuracy")
    if not len(accuracy):
        return [f"Every run of the linear softmax on {config['dataset']} failed "
                f"({tables.counted(len(records), 'seed')}), so there is "
                "no test accuracy to report; the table's note says why."]
    bf16 = ", products in bfloat16" if config.get("compute_dtype", "float32") != "float32" else ""
    out = [f"Tuned on validation and trained on {written['summary']['train_examples']:,} images, the linear softmax "
           f"on {config['dataset']} scores {tables.stated(accuracy)} test accuracy (error "
           f"{tables.stated(1 - accuracy)}; {len(accuracy)} of {len(records)} seeds{bf16}): the reference every "
           "deeper model in the later tables must beat."]
    interval = tables.interval(stats.summarize(accuracy))
    out.append(f"The 95% CI of its mean accuracy is {interval} %." if interval != "—" else
               "There are too few seeds for a 95% CI of its mean accuracy.")
    if written["linear_recipe"].get("on_edge"):
        out.append("Its tuned point lies on the edge of the tuning grid, so a better one may lie outside it.")
    versus = []
    for name, _, error in LITERATURE[config["dataset"]]:
        source, what = name.rstrip("†").split(": ", 1)
        theirs = f" the {error} % {source} report for their {what}"
        versus.append(tables.change([float(error) / 100], 1 - accuracy, words=(
            "{} pts higher than" + theirs, "{} pts lower than" + theirs, "the same as" + theirs)))
    if versus:
        out.append(f"Its error is {tables.listed_changes(versus)} (not run here).")
    return out


def main(argv=None) -> dict:
    run = experiment.start(Config, __doc__, argv)
    config, out, train_split, test = run.config, run.out, run.train_split, run.test_split

    grid = experiment.tune_linear(config, train_split)
    trained = experiment.train_models("linear", config, train_split, grid.best, models.LINEAR)
    classes, _ = experiment.compile_and_run(evaluate.seed_outputs, trained.params, test.images, apply=linear.logits,
                                            reduce=tasks.CLASSIFICATION.reduce, models_at_once=config.models_at_once)
    total = len(test.labels)
    correct = (np.asarray(classes) == test.labels).sum(-1)
    records = results.seed_records(
        trained.failed, model="linear", test_correct=correct, test_total=total, test_accuracy=correct / total,
        final_train_loss=np.asarray(trained.log.loss[:, -1]))
    summary = {"parameters": models.parameter_count(experiment.first_seed(trained.params)),
               "train_examples": len(train_split.labels), "test_examples": total}
    out.mkdir(parents=True, exist_ok=True)
    results.save_params(out / "params.npz", jax.device_get(trained.params))
    drawn = experiment.good_seed(trained.params, trained.failed)
    if drawn is not None:  # a failed model is never drawn as if it were fine
        seed, params = drawn
        plots.templates(linear.templates(params), data.SOURCES[config.dataset].classes, out / "templates.png",
                        title=f"Templates of the linear model on {config.dataset} (seed {seed}): columns of w")
    return experiment.finish(
        run, experiment="baseline", make_tables=make_tables, records=records, linear_recipe=grid.recipe(),
        tuning=grid.records(), timing=trained.timing, summary=summary,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
