"""Experiment configs: the shared training fields, named presets, checks, and command-line flags.

Each experiment is a frozen dataclass deriving from `TrainingConfig`, with a
`PRESETS` dict: `quick` (seconds, what the tests run), `cpu` (the defaults,
minutes on 2 CPU cores) and `gpu` (the big settings of the committed GPU
tables). `parse` builds one from `--preset` and one flag per field; every field
is checked before anything loads, compiles or trains.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import Any, Sequence

from mnist_linear import data, train

PRESET_NAMES = ("quick", "cpu", "gpu")


def field(default, help: str):
    """A config field with its flag's help text."""
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """What every experiment shares: the data, the seeds, and how models are tuned and trained."""

    dataset: str = field("mnist", "the dataset: mnist or fashion_mnist")
    source: str = field("idx", "idx: the IDX files; tfds: the same arrays through tensorflow-datasets")
    seed: int = field(0, "master seed: model s of a run trains from key s of jax.random.split(key(seed))")
    seeds: int = field(10, "models per configuration (independent seeds, one vmapped program)")
    epochs: int = field(10, "training epochs")
    batch_size: int = field(100, "examples per SGD step")
    momentum: float = field(0.9, "SGD momentum (0 for plain SGD)")
    schedule: str = field("cosine", "learning-rate schedule: cosine (decays to 0) or constant")
    learning_rates: tuple[float, ...] = field((0.03, 0.1, 0.3, 1.0), "the linear model's tuning grid of rates")
    weight_decays: tuple[float, ...] = field((0.0, 1e-5, 1e-4, 1e-3), "the linear model's tuning grid of L2 decays")
    tuning_seeds: int = field(2, "seeds per tuning grid point")
    num_validation: int = field(10_000, "the last this-many training images form the validation split")
    train_examples: int = field(0, "training images used (the first ones); 0: all")
    deep_learning_rate: float = field(0.05, "learning rate of the MLP and CNNs (one fixed setting)")
    deep_weight_decay: float = field(5e-4, "L2 weight decay of the MLP and CNNs")
    shared_order: bool = field(False, "every seed visits the data in one order (one wide GEMM for linear "
                                      "sweeps; seed variance then leaves out the data order)")
    compute_dtype: str = field("float32", "dtype of the training products: float32 or bfloat16 (accelerators; "
                                          "parameters and optimizer state stay float32)")
    models_at_once: int = field(0, "seeds (tuning: grid points) each device trains and scores at a time; 0: "
                                   "all of its own (the fastest with a shared order); g ≥ 1: the same numbers "
                                   "bit for bit on any number of devices (but for spatial's exhaustive grid)")

    @property
    def train_config(self) -> train.TrainConfig:
        return train.TrainConfig(self.epochs, self.batch_size, self.momentum, self.schedule, self.shared_order,
                                 self.compute_dtype, self.models_at_once)

    @property
    def deep_hparams(self) -> train.Hyperparams:
        return train.Hyperparams(self.deep_learning_rate, self.deep_weight_decay)

    def check(self) -> None:
        """Raises ValueError naming the first field out of range (and what to pass instead)."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            expected = type(f.default)
            if isinstance(f.default, tuple):
                if not isinstance(value, tuple) or not value or not all(
                        isinstance(v, type(f.default[0])) or isinstance(f.default[0], float) and isinstance(v, int)
                        for v in value):
                    raise ValueError(f"{f.name} must be a non-empty tuple of {type(f.default[0]).__name__}, "
                                     f"got {value!r}.")
            elif isinstance(value, bool) != isinstance(f.default, bool) or not isinstance(
                    value, (float, int) if expected is float else expected):
                raise ValueError(f"{f.name} must be a {expected.__name__}, got {value!r}.")
        _one_of("dataset", self.dataset, tuple(data.SOURCES))
        _one_of("source", self.source, ("idx", "tfds", "tfds_official"))
        _one_of("schedule", self.schedule, ("cosine", "constant"))
        _one_of("compute_dtype", self.compute_dtype, train.COMPUTE_DTYPES)
        _at_least("seeds", self.seeds, 1)
        _at_least("epochs", self.epochs, 1)
        _at_least("batch_size", self.batch_size, 1)
        _at_least("tuning_seeds", self.tuning_seeds, 1)
        _at_least("num_validation", self.num_validation, 1)
        _at_least("train_examples", self.train_examples, 0)
        _at_least("seed", self.seed, 0)
        _at_least("models_at_once", self.models_at_once, 0)
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}.")
        for name in ("learning_rates", "deep_learning_rate"):
            if min(_values(getattr(self, name))) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}.")
        for name in ("weight_decays", "deep_weight_decay"):
            if min(_values(getattr(self, name))) < 0:
                raise ValueError(f"{name} must be ≥ 0, got {getattr(self, name)}.")
        train_size = self.train_examples or 60_000
        if self.num_validation >= train_size:
            raise ValueError(f"num_validation={self.num_validation} must be smaller than the "
                             f"{train_size:,} training images used.")
        if self.batch_size > train_size - self.num_validation:
            raise ValueError(f"batch_size={self.batch_size} is larger than the {train_size - self.num_validation:,} "
                             "images left for tuning after the validation split; lower it.")


def _values(value) -> tuple:
    return value if isinstance(value, tuple) else (value,)


def _one_of(name: str, value, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}.")


def _at_least(name: str, value: int, low: int) -> None:
    if value < low:
        raise ValueError(f"{name} must be ≥ {low}, got {value}.")


# Shared by every experiment's quick preset: tiny, for the tests and a first look.
QUICK_TRAINING = dict(seeds=2, epochs=1, learning_rates=(0.1, 0.3), weight_decays=(0.0, 1e-4),
                      tuning_seeds=1, num_validation=1000, train_examples=5000)


def build(config_cls, preset: str = "cpu", **overrides):
    """`config_cls` with `config_cls.PRESETS[preset]`, then `overrides`, applied; checked."""
    if preset not in config_cls.PRESETS:
        raise ValueError(f"Unknown preset {preset!r}; choose one of {tuple(config_cls.PRESETS)}.")
    config = dataclasses.replace(config_cls(), **{**config_cls.PRESETS[preset], **overrides})
    config.check()
    return config


def parse(config_cls, doc: str, argv: Sequence[str] | None = None) -> tuple[Any, Path, str]:
    """(config, out folder, preset) from the command line: `--out`, `--preset`, one flag per field.

    Flags given explicitly apply on top of the preset. The config is checked,
    and `--out` must be a folder that can be written, before anything runs.
    """
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for results.json (or .json.gz), tables and figures (created if missing)")
    parser.add_argument("--preset", choices=tuple(config_cls.PRESETS), default="cpu",
                        help="named settings (default: cpu); quick runs in seconds, gpu holds the big settings")
    parser.add_argument("--quick", action="store_const", const="quick", dest="preset",
                        help="the same as --preset quick")
    for f in dataclasses.fields(config_cls):
        flag, default = "--" + f.name.replace("_", "-"), f.default
        help = f"{f.metadata.get('help', '')} (default: {default!r}; the preset may change it)"
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help)
        elif isinstance(default, tuple):
            parser.add_argument(flag, nargs="+", type=type(default[0]), default=None, help=help)
        else:
            parser.add_argument(flag, type=type(default), default=None, help=help)
    args = vars(parser.parse_args(argv))
    overrides = {f.name: args[f.name] for f in dataclasses.fields(config_cls) if args[f.name] is not None}
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    try:
        config = build(config_cls, args["preset"], **overrides)
    except ValueError as e:
        parser.error(str(e))
    try:
        check_writable(args["out"])
    except ValueError as e:
        parser.error(str(e))
    return config, args["out"], args["preset"]


def check_writable(out: Path) -> None:
    """Raises ValueError unless `out` is (or can be made) a writable folder."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; name a folder.")
    existing = next((p for p in (out, *out.parents) if p.exists()), Path("."))
    if not os.access(existing, os.W_OK):
        raise ValueError(f"--out {out}: {existing} is not writable; choose another folder.")
