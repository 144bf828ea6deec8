"""Shift sensitivity as whole compiled sweeps: predictions over seeds × offsets,
training over train offsets × seeds, and the invariance metrics of the literature.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from mnist_linear import models, shifts, train


@functools.partial(jax.jit, static_argnames=("logits_fn", "fill", "batch_size", "offsets_at_once"))
def grid_predictions(params, images, dxs, dys, *, logits_fn, fill: str = "zeros", batch_size: int = 1000,
                     offsets_at_once: int | None = None):
    """Predicted class of S models on all N images at each of O offsets: int32 `(O, S, N)`.

    params: a pytree with a leading seed axis S; images: uint8 `(N, H, W)`;
    dxs, dys: int `(O,)`, each smaller than the image: traced offsets cannot be
    checked, so check them first with `shifts.check_offsets`.
    `offsets_at_once` vmaps that many offsets per step of a `lax.map` (None: all
    of them): a convolutional model's activations for every offset at once can
    outgrow memory and cache, a linear model's cannot.
    """

    def at_offset(dx, dy):
        shift = lambda x: shifts.translate(x, dx, dy, fill)  # noqa: E731
        predict = lambda p: train.predictions(logits_fn, p, images, batch_size=batch_size, transform=shift)  # noqa: E731
        return jax.vmap(predict)(params)

    return jax.lax.map(lambda offset: at_offset(*offset), (dxs, dys), batch_size=offsets_at_once or len(dxs))


@functools.partial(jax.jit, static_argnames=("logits_fn", "max_shift", "fill", "batch_size"))
def paired_shift_predictions(params, images, key, *, logits_fn, max_shift: int, fill: str = "zeros",
                             batch_size: int = 1000):
    """Predictions `(2, S, N)` of S models on two independent random shifts of each image.

    Every image gets two offsets drawn uniformly from [-max_shift, max_shift]²;
    all seeds see the same draws.
    """
    first, second = jax.random.split(key)
    draws = (shifts.random_offsets(first, images.shape[0], max_shift),
             shifts.random_offsets(second, images.shape[0], max_shift))

    def under(offsets):
        shift_each = lambda x, dx, dy: shifts.translate_each(x, dx, dy, fill)  # noqa: E731
        predict = lambda p: train.predictions(logits_fn, p, images, batch_size=batch_size,  # noqa: E731
                                               transform=shift_each, per_example=offsets)
        return jax.vmap(predict)(params)

    return jnp.stack([under(d) for d in draws])


def consistency(paired: np.ndarray) -> np.ndarray:
    """Fraction of images predicted alike under two random shifts (Zhang 2019): `(2, S, N)` -> `(S,)`."""
    return (paired[0] == paired[1]).mean(-1)


def top1_change(predictions: np.ndarray, dxs: np.ndarray, dys: np.ndarray) -> np.ndarray:
    """P(top-1 prediction changes) under a 1-px shift, averaged over the four axis directions
    (Azulay & Weiss 2019): grid predictions `(O, S, N)` -> `(S,)`."""
    centre = predictions[_index(dxs, dys, 0, 0)]
    one_px = [_index(dxs, dys, dx, dy) for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))]
    return np.mean([(predictions[o] != centre).mean(-1) for o in one_px], axis=0)


def grid_accuracy(predictions: np.ndarray, labels: np.ndarray, dxs: np.ndarray, dys: np.ndarray,
                  radius: int) -> np.ndarray:
    """Fraction of images correct at every offset of [-radius, radius]² (Engstrom et al. 2019): `(S,)`."""
    inside = (np.abs(dxs) <= radius) & (np.abs(dys) <= radius)
    if inside.sum() != (2 * radius + 1) ** 2:
        raise ValueError(f"The grid does not cover [-{radius}, {radius}]²; evaluate a larger grid.")
    return (predictions[inside] == labels).all(0).mean(-1)


def _index(dxs, dys, dx, dy) -> int:
    (hits,) = np.nonzero((dxs == dx) & (dys == dy))
    if len(hits) != 1:
        raise ValueError(f"Offset ({dx}, {dy}) is not in the grid.")
    return int(hits[0])


def averaged_over_shifts(logits_fn, dxs, dys, fill: str = "zeros"):
    """Test-time augmentation: a logits function averaging `logits_fn` over the given shifts.

    The shifts use their own `fill` whatever the test perturbation is: TTA is part of the model.
    """
    dxs, dys = np.asarray(dxs), np.asarray(dys)

    def logits(params, images):
        shifts.check_offsets(dxs, images.shape[-1], "dx")  # concrete: the shifts are fixed numpy arrays
        shifts.check_offsets(dys, images.shape[-2], "dy")
        each = jax.vmap(lambda dx, dy: logits_fn(params, shifts.translate(images, dx, dy, fill)))(dxs, dys)
        return each.mean(0)

    return logits


@functools.partial(jax.jit, static_argnames=("model", "loss_fn", "config", "fill"))
def train_shifted(keys, images, labels, hparams, dxs, dys, *, model: models.Model, loss_fn,
                  config: train.TrainConfig, fill: str = "zeros"):
    """Models trained on data shifted by a fixed offset: T offsets × S seeds in one program.

    Returns (params, log) with leading axes `(T, S)`. Every offset sees the same
    seeds, so the differences between rows come from the offset alone.
    """

    def one(key, dx, dy):
        shift = lambda _, x: shifts.translate(x, dx, dy, fill)  # noqa: E731
        return train.train(key, images, labels, hparams, model=model, loss_fn=loss_fn, config=config,
                           augment=shift)

    over_seeds = lambda dx, dy: jax.vmap(lambda k: one(k, dx, dy))(keys)  # noqa: E731
    return jax.vmap(over_seeds)(dxs, dys)
