"""What a task is: its loss, the per-image output kept for scoring, the score, and its targets.

The one training loop (`train.train`), the tuning grid (`tuning`), the
evaluation sweeps (`evaluate`) and the experiments take a `Task`, so a new task
(regression of a measurement, say) is a new `Task`, never a second loop.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mnist_linear import checks, data, metrics


class Task(NamedTuple):
    """A supervised task over images. Create each task once: jitted programs key on it.

    loss: `(outputs (B, K), targets (B,) or (B, T)) -> scalar`, minimised in training.
    reduce: `outputs (..., K) -> kept (...) or (..., T)`: what evaluation keeps per
        image (the predicted class for classification, the raw outputs for regression).
    score: `(kept (N, ...), targets) -> scalar`, higher is better: tuning picks the
        best grid point by it and tables report it.
    targets: `data.Split -> (N,) or (N, T) array`: the targets of a split.
    num_outputs: K, the width of the model's last layer.
    check_targets: `(targets, N or None) -> None`, raising TypeError or ValueError for
        targets this task cannot train on (labels out of range, wrong shape).
    chance_loss: `targets -> float`: the loss of a model that learned nothing from the
        images, only the targets' distribution (predicting the class frequencies: the
        labels' entropy, at most log C nats; predicting the targets' mean: the sum of
        their variances). A run whose final loss is no better has failed.
    """

    name: str
    loss: Callable[[jax.Array, jax.Array], jax.Array]
    reduce: Callable[[jax.Array], jax.Array]
    score: Callable[[jax.Array, jax.Array], jax.Array]
    score_name: str
    targets: Callable[[data.Split], np.ndarray]
    num_outputs: int
    check_targets: Callable[[jax.Array, int | None], None]
    chance_loss: Callable[[np.ndarray], float]


def _accuracy(classes: jax.Array, labels: jax.Array) -> jax.Array:
    if classes.shape != labels.shape or classes.ndim != 1:
        raise ValueError(f"accuracy takes predicted classes and labels of the same shape (N,), got "
                         f"{tuple(classes.shape)} and {tuple(labels.shape)}.")
    return jnp.mean(classes == labels)


def _labels(split: data.Split) -> np.ndarray:
    return split.labels


def _identity(outputs: jax.Array) -> jax.Array:
    return outputs


def _negative_mse(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    return -metrics.mean_squared_error(outputs, targets)


def _check_labels(labels, num_examples=None) -> None:
    checks.labels(labels, data.NUM_CLASSES, num_examples)


def _label_entropy(labels) -> float:
    """The cross-entropy of predicting the class frequencies: the entropy of the labels, in nats (≤ log C)."""
    p = np.bincount(np.asarray(labels), minlength=data.NUM_CLASSES) / np.size(labels)
    return float(-np.sum(p[p > 0] * np.log(p[p > 0])))


def _mean_prediction_loss(targets) -> float:
    return float(np.var(np.asarray(targets, np.float64), axis=0).sum())


CLASSIFICATION = Task(
    name="classification", loss=metrics.cross_entropy, reduce=metrics.predict, score=_accuracy,
    score_name="accuracy", targets=_labels, num_outputs=data.NUM_CLASSES, check_targets=_check_labels,
    chance_loss=_label_entropy,
)


def _split_targets(split: data.Split) -> np.ndarray:
    if split.targets is None:
        raise ValueError("This split has no regression targets; make them with a regression.Problem's make.")
    return split.targets


def regression(name: str, num_targets: int, targets: Callable[[data.Split], np.ndarray] = _split_targets) -> Task:
    """Mean squared error on `num_targets` outputs; scored by −MSE (higher is better); raw outputs kept.

    targets: `data.Split -> float (N, num_targets)`; by default the split's own `targets`.
    Raises ValueError unless num_targets ≥ 1.
    """
    checks.integer(num_targets, "num_targets")
    # A partial, not a closure: `compiling`'s executable store names a task by its fields.
    return Task(name=name, loss=metrics.mean_squared_error, reduce=_identity, score=_negative_mse,
                score_name="negative mean squared error", targets=targets, num_outputs=num_targets,
                check_targets=functools.partial(_check_targets, num_targets), chance_loss=_mean_prediction_loss)


def _check_targets(num_targets: int, y, num_examples=None) -> None:
    checks.targets(y, num_targets, num_examples)
