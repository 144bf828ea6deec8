"""The linear softmax baseline: tune on validation, train S seeds, report the test set.

Run:
    python -m experiments.baseline --out results/baseline
    python -m experiments.baseline --out results/baseline-fashion --dataset fashion_mnist
    python -m experiments.baseline --out /tmp/quick --quick      # seconds, as the tests run it

Runtime (2 CPU cores): about 2 minutes (grid of 16 points × 2 seeds, then 10 seeds).
Expected: MNIST test accuracy 92.6 ± 0.05 % (error 7.4 %); Fashion-MNIST about 84 %.

Steps: (1) a learning-rate × weight-decay grid, trained on the first 50,000
training images and scored on the last 10,000; (2) the best point (mean
validation accuracy) trains `seeds` models on all 60,000 images, vmapped;
(3) every model is scored on all 10,000 test images.
"""

from __future__ import annotations

import dataclasses
import sys

import jax
import jax.numpy as jnp
import numpy as np

from mnist_linear import data, experiment, linear, metrics, plots, results, stats, tables, train, tuning

LINEAR = train.Model(linear.init, linear.logits)

# Reference rows, from the literature, not run here.
LITERATURE = {
    "mnist": (
        ("LeCun et al. 1998: linear classifier†", "7,850", "12.0"),
        ("LeCun et al. 1998: pairwise linear classifier, deskewing†", "—", "7.6"),
    ),
    "fashion_mnist": (),
}


@dataclasses.dataclass(frozen=True)
class Config:
    dataset: str = "mnist"
    source: str = "idx"  # or "tfds": the same arrays through tensorflow-datasets
    seed: int = 0
    seeds: int = 10
    epochs: int = 10
    batch_size: int = 100
    momentum: float = 0.9
    schedule: str = "cosine"
    learning_rates: tuple[float, ...] = (0.03, 0.1, 0.3, 1.0)
    weight_decays: tuple[float, ...] = (0.0, 1e-5, 1e-4, 1e-3)
    tuning_seeds: int = 2
    num_validation: int = 10_000
    train_examples: int = 0  # 0: the whole training split; fewer for quick runs

    @property
    def train_config(self) -> train.TrainConfig:
        return train.TrainConfig(self.epochs, self.batch_size, self.momentum, self.schedule)


QUICK = dict(seeds=2, epochs=1, learning_rates=(0.1, 0.3), weight_decays=(0.0, 1e-4),
             tuning_seeds=1, num_validation=1000, train_examples=5000)


def tune(config: Config, train_split: data.Split) -> tuning.GridResult:
    """The grid search on (train minus validation, validation)."""
    fit, validation = data.split_validation(train_split, config.num_validation)
    return tuning.grid_search(
        jax.random.fold_in(jax.random.key(config.seed), 1),  # a stream apart from the final seeds
        fit, validation, model=LINEAR, loss_fn=metrics.cross_entropy, config=config.train_config,
        learning_rates=config.learning_rates, weight_decays=config.weight_decays, seeds=config.tuning_seeds,
    )


def training_split(config: Config, dataset: data.Dataset) -> data.Split:
    n = config.train_examples or len(dataset.train.labels)
    return data.Split(dataset.train.images[:n], dataset.train.labels[:n])


def make_table(written: dict) -> tables.Table:
    """The baseline table, from the contents of results.json alone."""
    config, summary, timing = written["config"], written["summary"], written["timing"]
    accuracy = stats.Summary(**summary["test_accuracy"])
    error = stats.Summary(**summary["test_error"])
    seeds = f"{accuracy.n} seeds" + (f", {summary['diverged_seeds']} diverged and excluded"
                                     if summary["diverged_seeds"] else "")
    return tables.Table(
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
            f"Tuned on a validation split (last {config['num_validation']:,} training images): "
            f"learning rate {written['tuned']['learning_rate']:g}, weight decay {written['tuned']['weight_decay']:g}; "
            f"SGD, momentum {config['momentum']}, batch {config['batch_size']}, epochs {config['epochs']}, "
            f"{config['schedule']} schedule, {summary['train_examples']:,} training images. "
            f"Ran on {experiment.machine(written['environment'])}.",
            *(["† Reported in the literature (error only), not run here."] if LITERATURE[config["dataset"]] else []),
        ),
    )


def main(argv=None) -> dict:
    config, out = experiment.parse_config(Config, QUICK, __doc__, argv)
    dataset = data.load(config.dataset, source=config.source)
    train_split = training_split(config, dataset)

    grid = tune(config, train_split)
    best = grid.best
    print(f"tuned on validation: learning_rate={best.learning_rate:g} weight_decay={best.weight_decay:g}")

    keys = experiment.seed_keys(config.seed, config.seeds)
    (params, log), timing = experiment.compile_and_run(
        train.train_seeds, keys, jnp.asarray(train_split.images), jnp.asarray(train_split.labels),
        train.Hyperparams(jnp.float32(best.learning_rate), jnp.float32(best.weight_decay)),
        model=LINEAR, loss_fn=metrics.cross_entropy, config=config.train_config,
    )
    test_images, test_labels = jnp.asarray(dataset.test.images), jnp.asarray(dataset.test.labels)
    correct = np.asarray(jax.vmap(lambda p: train.count_correct(LINEAR.logits, p, test_images, test_labels))(params))
    total = len(dataset.test.labels)
    diverged = np.asarray(log.diverged)

    records = [
        {"model": "linear", "seed": s, "test_correct": int(correct[s]), "test_total": total,
         "test_accuracy": correct[s] / total, "test_error": 1 - correct[s] / total,
         "final_train_loss": float(log.loss[s, -1]), "diverged": bool(diverged[s])}
        for s in range(config.seeds)
    ]
    ok = ~diverged
    if not ok.any():
        raise FloatingPointError("Every seed diverged; see results of the grid and lower the learning rate.")
    summary = {
        "test_accuracy": stats.summarize(correct[ok] / total)._asdict(),
        "test_error": stats.summarize(1 - correct[ok] / total)._asdict(),
        "parameters": sum(int(np.prod(p.shape[1:])) for p in jax.tree.leaves(params)),
        "diverged_seeds": int((~ok).sum()),
        "train_examples": len(train_split.labels),
        "test_examples": total,
    }
    out.mkdir(parents=True, exist_ok=True)
    results.save_params(out / "params.npz", params)
    plots.templates(
        linear.templates(jax.tree.map(lambda p: p[0], params)), data.SOURCES[config.dataset].classes,
        out / "templates.png", title=f"Templates of the linear model on {config.dataset} (seed 0): columns of w",
    )
    written = experiment.write_outputs(
        out, experiment="baseline", config=config, dataset=dataset, records=records,
        tuned={"learning_rate": best.learning_rate, "weight_decay": best.weight_decay},
        tuning=grid.records(), timing=timing, summary=summary,
    )
    table = make_table(written)
    experiment.write_tables(out, [table])
    print(table.markdown())
    return written


if __name__ == "__main__":
    main(sys.argv[1:])
