"""Losses and scores as small pure functions of model outputs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy: logits `(N, C)`, int labels `(N,)` -> scalar."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def mean_squared_error(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean over examples of the squared error summed over targets: `(N, T)` -> scalar."""
    return jnp.sum((outputs - targets) ** 2, axis=-1).mean()


def predict(logits: jax.Array) -> jax.Array:
    """The predicted class: `(..., C)` -> int32 `(...)`."""
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Fraction of correct predictions: `(N, C)`, `(N,)` -> scalar."""
    return jnp.mean(predict(logits) == labels)
