"""Plumbing shared by the experiment scripts: configs and flags, the tuned
linear recipe, seeds, timing, outputs."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import time
from pathlib import Path
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mnist_linear import data, metrics, models, results, tables, train, tuning


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """What every experiment shares: the data, the seeds, and how the linear model is tuned and trained."""

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
    deep_learning_rate: float = 0.05  # one fixed setting for the MLP and the CNNs
    deep_weight_decay: float = 5e-4

    @property
    def train_config(self) -> train.TrainConfig:
        return train.TrainConfig(self.epochs, self.batch_size, self.momentum, self.schedule)

    @property
    def deep_hparams(self) -> train.Hyperparams:
        return train.Hyperparams(self.deep_learning_rate, self.deep_weight_decay)


QUICK_TRAINING = dict(seeds=2, epochs=1, learning_rates=(0.1, 0.3), weight_decays=(0.0, 1e-4),
                      tuning_seeds=1, num_validation=1000, train_examples=5000)


@dataclasses.dataclass(frozen=True)
class DeepTrainingConfig(TrainingConfig):
    """CPU-sized seeds and epochs, for experiments that train the MLP and CNNs."""

    seeds: int = 3
    epochs: int = 3


def training_split(config: TrainingConfig, dataset: data.Dataset) -> data.Split:
    """The first `train_examples` training images (all by default), put on the device once:
    the tuning grid and every model trained from it reuse the same buffers."""
    n = config.train_examples or len(dataset.train.labels)
    return data.Split(jnp.asarray(dataset.train.images[:n]), jnp.asarray(dataset.train.labels[:n]))


def tune_linear(config: TrainingConfig, train_split: data.Split) -> tuning.GridResult:
    """The grid search of the linear model on (train minus validation, validation)."""
    fit, validation = data.split_validation(train_split, config.num_validation)
    return tuning.grid_search(
        jax.random.fold_in(jax.random.key(config.seed), 1),  # a stream apart from the final seeds
        fit, validation, model=models.LINEAR, loss_fn=metrics.cross_entropy, config=config.train_config,
        learning_rates=config.learning_rates, weight_decays=config.weight_decays, seeds=config.tuning_seeds,
    )


def train_models(
    config: TrainingConfig,
    train_split: data.Split,
    hparams: train.Hyperparams,
    model: models.Model = models.LINEAR,
    augment: train.Augment | None = None,
):
    """((params, log), timing): `config.seeds` models, vmapped, with seed s from key s."""
    return compile_and_run(
        train.train_seeds, seed_keys(config.seed, config.seeds),
        jnp.asarray(train_split.images), jnp.asarray(train_split.labels),
        jax.tree.map(jnp.float32, hparams), model=model, loss_fn=metrics.cross_entropy,
        config=config.train_config, augment=augment,
    )


@functools.partial(jax.jit, static_argnames=("logits_fn", "transform", "batch_size"))
def _predictions_seeds(params, images, *, logits_fn, transform, batch_size):
    predict = lambda p: train.predictions(logits_fn, p, images, batch_size=batch_size, transform=transform)  # noqa: E731
    return jax.vmap(predict)(params)


def predictions(logits_fn, params, split: data.Split, transform=None, batch_size: int = 1000) -> np.ndarray:
    """Predicted classes of each of the S models (params with a leading seed axis) on all of `split`: `(S, N)`."""
    return np.asarray(_predictions_seeds(params, jnp.asarray(split.images), logits_fn=logits_fn,
                                         transform=transform, batch_size=batch_size))


def correct_counts(logits_fn, params, split: data.Split, transform=None, batch_size: int = 1000) -> np.ndarray:
    """Correct predictions of each of the S models on all of `split`: `(S,)`."""
    return (predictions(logits_fn, params, split, transform, batch_size) == np.asarray(split.labels)).sum(-1)


def first_seed(params):
    """The parameters of seed 0 from a pytree with a leading seed axis."""
    return jax.tree.map(lambda p: p[0], params)


def score(logits_fn, params, split: data.Split, transform=None, batch_size: int = 1000) -> np.ndarray:
    """Accuracy of each of the S models on all of `split`: `(S,)`."""
    return correct_counts(logits_fn, params, split, transform, batch_size) / len(split.labels)


def seed_records(log: train.TrainLog, **per_seed) -> list[dict]:
    """One record per seed: `per_seed` values (scalars or `(S,)` arrays) plus the divergence flag."""
    diverged = np.asarray(log.diverged)
    return [{"seed": s, **{k: (v[s].item() if isinstance(v, np.ndarray) else v) for k, v in per_seed.items()},
             "diverged": bool(diverged[s])} for s in range(len(diverged))]


def finite(records: list[dict], key: str, **where) -> np.ndarray:
    """The values of `key` over the records matching `where` whose model did not diverge."""
    return np.array([r[key] for r in records
                     if not r.get("diverged") and all(r[k] == v for k, v in where.items())])


def parse_config(config_cls, quick: dict[str, Any], doc: str, argv: Sequence[str] | None = None):
    """(config, out_dir) from the command line: `--out`, `--quick`, one flag per field.

    `--quick` starts from the `quick` overrides; explicit flags apply on top.
    """
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for results.json (or .json.gz), tables and figures")
    parser.add_argument("--quick", action="store_true", help="tiny settings that run in seconds (the tests)")
    for field in dataclasses.fields(config_cls):
        flag, default = "--" + field.name.replace("_", "-"), field.default
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        elif isinstance(default, tuple):
            parser.add_argument(flag, nargs="+", type=type(default[0]), default=None)
        else:
            parser.add_argument(flag, type=type(default), default=None)
    args = vars(parser.parse_args(argv))
    config = config_cls(**(quick if args["quick"] else {}))
    overrides = {f.name: args[f.name] for f in dataclasses.fields(config_cls) if args[f.name] is not None}
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    return dataclasses.replace(config, **overrides), args["out"]


def machine(env: dict) -> str:
    """'CPU (AMD EPYC ..., 2 cores)' or the accelerator's name, from `results.environment()`."""
    if env["platform"] == "cpu":
        return f"CPU ({env['processor']}, {env['cpu_count']} cores)"
    return f"{env['device_count']}× {env['device_kind']}"


def seed_keys(seed: int, count: int) -> jax.Array:
    """`count` independent keys `(count,)`; model s always gets key s."""
    return jax.random.split(jax.random.key(seed), count)


def compile_and_run(jitted, *args, **kwargs):
    """(outputs, {"compile_s", "run_s"}): compile and execution timed apart."""
    start = time.perf_counter()
    compiled = jitted.lower(*args, **kwargs).compile()
    compiled_at = time.perf_counter()
    out = jax.block_until_ready(compiled(*args))
    done = time.perf_counter()
    return out, {"compile_s": compiled_at - start, "run_s": done - compiled_at}


def write_outputs(
    out: Path,
    *,
    experiment: str,
    config,
    dataset: data.Dataset,
    records: list[dict],
    results_file: str = "results.json",
    **extra,
) -> dict:
    """Writes `results_file` into `out`; returns its contents as read back."""
    summary = {
        "experiment": experiment,
        "config": dataclasses.asdict(config),
        "environment": results.environment(),
        "dataset": {"name": dataset.name, "md5": dataset.md5, "folder": str(dataset.folder)},
        **extra,
        "records": records,
    }
    results.write_json(out / results_file, summary)
    return results.read_json(out / results_file)


def finish(out: Path, *, make_tables, write_figures=None, **outputs) -> dict:
    """Writes the results file, then the tables and figures made from its contents alone; prints the tables."""
    written = write_outputs(out, **outputs)
    table_list = make_tables(written)
    write_tables(out, table_list)
    if write_figures is not None:
        write_figures(written, out)
    print("\n".join(t.markdown() for t in table_list))
    return written


def write_tables(out: Path, table_list: Sequence[tables.Table]) -> None:
    """table.md and table.tex, the same tables in both."""
    results.write_text(out / "table.md", "\n".join(t.markdown() for t in table_list))
    results.write_text(out / "table.tex", "\n".join(t.latex() for t in table_list))
