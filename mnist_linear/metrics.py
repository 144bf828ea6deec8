"""Losses and scores as small pure functions of model outputs.

Each checks its documented shapes itself (they are static, so the check costs
nothing under `jit`), whatever `jax_numpy_rank_promotion` says: a column of
labels or targets of the wrong rank is an error, never a silent broadcast.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax


def _logits_and_labels(logits: jax.Array, labels: jax.Array, name: str) -> None:
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"{name} takes logits (N, C) and integer labels (N,), got {tuple(logits.shape)} and "
                         f"{tuple(labels.shape)}; flatten a column of labels with labels.reshape(-1).")
    if not np.issubdtype(np.dtype(labels.dtype), np.integer):
        raise TypeError(f"{name} takes integer class labels, got {labels.dtype}; one-hot rows convert with argmax(-1).")


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy in nats: logits `(N, C)`, int labels `(N,)` in [0, C) -> float scalar.

    Raises ValueError or TypeError for other shapes or dtypes. Labels outside
    [0, C) cannot be checked inside `jit`; `checks.labels` checks them where the
    data enter (training, tuning).
    """
    _logits_and_labels(logits, labels, "cross_entropy")
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def mean_squared_error(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean over the N examples of the squared error summed over the T targets (units: the targets'
    squared): outputs and targets both `(N, T)` -> float scalar.

    A single target keeps its axis: `(N, 1)`, not `(N,)`. Raises ValueError for
    any other pair of shapes.
    """
    if outputs.ndim != 2 or outputs.shape != targets.shape:
        raise ValueError(f"mean_squared_error takes outputs and targets of the same shape (N, T), got "
                         f"{tuple(outputs.shape)} and {tuple(targets.shape)}; a single target is a column: "
                         "targets[:, None].")
    return jnp.sum((outputs - targets) ** 2, axis=-1).mean()


def predict(logits: jax.Array) -> jax.Array:
    """The predicted class, the argmax (ties: the first): `(..., C)` -> int32 `(...)`."""
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Fraction of correct predictions in [0, 1]: logits `(N, C)`, int labels `(N,)` -> float scalar.

    Raises ValueError or TypeError for other shapes or dtypes.
    """
    _logits_and_labels(logits, labels, "accuracy")
    return jnp.mean(predict(logits) == labels)
