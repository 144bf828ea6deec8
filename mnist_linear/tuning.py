"""Learning-rate × weight-decay grid search, the whole grid one compiled program.

The hyperparameters are injected into the optimizer state as arrays
(`optax.inject_hyperparams`), so the grid is a `vmap` axis, not a recompile.
Models are chosen by accuracy on the validation split; the test split is never
looked at.
"""

from __future__ import annotations

import functools
import warnings
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mnist_linear import data, models, train


class GridResult(NamedTuple):
    learning_rates: np.ndarray  # (L,) float64, as given
    weight_decays: np.ndarray  # (D,) float64, as given
    val_accuracy: np.ndarray  # (L, D, S)
    diverged: np.ndarray  # (L, D, S) bool
    best: train.Hyperparams  # highest mean validation accuracy among grid points with no diverged seed

    def records(self) -> list[dict]:
        return [
            {"learning_rate": float(lr), "weight_decay": float(wd), "seed": s,
             "val_accuracy": float(self.val_accuracy[i, j, s]), "diverged": bool(self.diverged[i, j, s])}
            for i, lr in enumerate(self.learning_rates)
            for j, wd in enumerate(self.weight_decays)
            for s in range(self.val_accuracy.shape[2])
        ]


@functools.partial(jax.jit, static_argnames=("model", "loss_fn", "config"))
def _train_and_score(keys, hparams, train_images, train_labels, val_images, val_labels, *, model, loss_fn, config):
    def one(key, hp):
        params, log = train.train(key, train_images, train_labels, hp, model=model, loss_fn=loss_fn, config=config)
        return train.count_correct(model.logits, params, val_images, val_labels), log.diverged

    # Every grid point sees the same seeds (common random numbers), so the
    # differences between grid points come from the hyperparameters alone.
    over_seeds = jax.vmap(one, in_axes=(0, None))
    return jax.vmap(over_seeds, in_axes=(None, 0))(keys, hparams)


def grid_search(
    key: jax.Array,
    train_split: data.Split,
    val_split: data.Split,
    *,
    model: models.Model,
    loss_fn: train.LossFn,
    config: train.TrainConfig,
    learning_rates: Sequence[float],
    weight_decays: Sequence[float],
    seeds: int = 1,
) -> GridResult:
    """Trains `seeds` models at every (learning rate, weight decay) and scores them on `val_split`."""
    lrs, wds = np.asarray(learning_rates, np.float64), np.asarray(weight_decays, np.float64)
    lr_grid, wd_grid = np.meshgrid(lrs, wds, indexing="ij")
    hparams = train.Hyperparams(jnp.asarray(lr_grid.ravel(), jnp.float32), jnp.asarray(wd_grid.ravel(), jnp.float32))
    correct, diverged = _train_and_score(
        jax.random.split(key, seeds), hparams,
        jnp.asarray(train_split.images), jnp.asarray(train_split.labels),
        jnp.asarray(val_split.images), jnp.asarray(val_split.labels),
        model=model, loss_fn=loss_fn, config=config,
    )
    shape = (len(lrs), len(wds), seeds)
    accuracy = np.asarray(correct).reshape(shape) / len(val_split.labels)
    diverged = np.asarray(diverged).reshape(shape)
    score = np.where(diverged.any(-1), -np.inf, accuracy.mean(-1))
    if np.isneginf(score).all():
        raise FloatingPointError(
            "Every grid point diverged (inf or nan loss); lower the learning rates of the grid."
        )
    i, j = np.unravel_index(np.argmax(score), score.shape)
    if len(lrs) > 1 and i in (0, len(lrs) - 1) or len(wds) > 1 and j == len(wds) - 1:
        warnings.warn(f"The best grid point (learning rate {lrs[i]:g}, weight decay {wds[j]:g}) is on the edge "
                      f"of the grid {lrs.tolist()} × {wds.tolist()}; the optimum may lie outside: widen the grid.")
    return GridResult(lrs, wds, accuracy, diverged, train.Hyperparams(float(lrs[i]), float(wds[j])))
