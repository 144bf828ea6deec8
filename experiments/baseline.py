"""The linear softmax baseline: tune on validation, train S seeds, report the test set.

Run:
    python -m experiments.baseline --out results/baseline                       # the cpu preset
    python -m experiments.baseline --out results/baseline-fashion --dataset fashion_mnist
    python -m experiments.baseline --out /tmp/quick --preset quick             # seconds, as the tests run it

Runtime (2 CPU cores): cpu 40 s measured (the 16-point grid × 2 seeds, then 10 seeds ≈ 15 s);
quick RUNTIME_QUICK. The gpu preset is the cpu one.
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
    config, summary, timing = written["config"], written["summary"], written["timing"]
    accuracy = stats.Summary(**summary["test_accuracy"])
    error = stats.Summary(**summary["test_error"])
    seeds = f"{accuracy.n} seeds" + (f", {summary['diverged_seeds']} diverged and excluded"
                                     if summary["diverged_seeds"] else "")
    return [tables.Table(
        caption=f"Linear softmax on {config['dataset']}: all {summary['test_examples']:,} test images, "
                "mean ± std over seeds.",
        header=("model", "parameters", "test accuracy (%)", "test error (%)", "95% CI of accuracy (%)",
                "train time"),
        rows=(
            (f"linear softmax, ours ({seeds})", f"{summary['parameters']:,}", tables.mean_std(accuracy),
             tables.mean_std(error), tables.interval(accuracy),
             f"{timing['run_s']:.1f} s for all seeds (+{timing['compile_s']:.1f} s compile)"),
            *((name, n, "—", err, "—", "—") for name, n, err in LITERATURE[config["dataset"]]),
        ),
        notes=(
            f"{tables.recipe_note(written['linear_recipe'], config)} (the validation split: the last "
            f"{config['num_validation']:,} training images); SGD, momentum {config['momentum']}, batch "
            f"{config['batch_size']}, {config['schedule']} schedule, {summary['train_examples']:,} training images. "
            f"Ran on {tables.machine(written['environment'])}.",
            *(["† Reported in the literature (error only), not run here."] if LITERATURE[config["dataset"]] else []),
        ),
    )]


def main(argv=None) -> dict:
    run = experiment.start(Config, __doc__, argv)
    config, out, dataset, train_split = run.config, run.out, run.dataset, run.train_split

    grid = experiment.tune_linear(config, train_split)
    (params, log), timing = experiment.train_models(config, train_split, grid.best, models.LINEAR)
    classes = evaluate.seed_outputs(params, dataset.test.images, apply=linear.logits,
                                    reduce=tasks.CLASSIFICATION.reduce)
    total = len(dataset.test.labels)
    correct = (np.asarray(classes) == dataset.test.labels).sum(-1)
    diverged = np.asarray(log.diverged)

    records = results.seed_records(
        diverged, model="linear", test_correct=correct, test_total=total, test_accuracy=correct / total,
        test_error=1 - correct / total, final_train_loss=np.asarray(log.loss[:, -1]))
    ok = ~diverged
    if not ok.any():
        raise FloatingPointError("Every seed diverged; see results of the grid and lower the learning rate.")
    summary = {
        "test_accuracy": stats.summarize(correct[ok] / total)._asdict(),
        "test_error": stats.summarize(1 - correct[ok] / total)._asdict(),
        "parameters": models.parameter_count(experiment.first_seed(params)),
        "diverged_seeds": int((~ok).sum()),
        "train_examples": len(train_split.labels),
        "test_examples": total,
    }
    out.mkdir(parents=True, exist_ok=True)
    results.save_params(out / "params.npz", jax.device_get(params))
    plots.templates(
        linear.templates(experiment.first_seed(params)), data.SOURCES[config.dataset].classes,
        out / "templates.png", title=f"Templates of the linear model on {config.dataset} (seed 0): columns of w",
    )
    return experiment.finish(
        run, experiment="baseline", make_tables=make_tables, records=records, linear_recipe=grid.recipe(), tuning=grid.records(), timing=timing, summary=summary,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
