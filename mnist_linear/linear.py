"""The linear model: `logits = x @ w + b` over the flattened pixels.

Each column of `w`, reshaped to the image, is the template of one class.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

Params = dict[str, jax.Array]


def init(key: jax.Array, num_pixels: int = 784, num_outputs: int = 10, scale: float = 0.01) -> Params:
    """`{"w": (num_pixels, num_outputs), "b": (num_outputs,)}`: w ~ N(0, scale²), b = 0."""
    return {
        "w": scale * jax.random.normal(key, (num_pixels, num_outputs), jnp.float32),
        "b": jnp.zeros((num_outputs,), jnp.float32),
    }


def logits(params: Params, images: jax.Array) -> jax.Array:
    """Float square images `(..., H, H)` with H·H = num_pixels -> `(..., num_outputs)`; a single image
    `(H, H)` gives one row `(num_outputs,)`. Raises ValueError for any other shape (flat pixels
    `(N, 784)` included: reshape them to `(N, 28, 28)`) and TypeError for integer pixels
    (`data.to_float` converts them)."""
    if not jnp.issubdtype(images.dtype, jnp.floating):
        raise TypeError(f"The linear model takes float images in [0, 1], got {images.dtype}: convert uint8 pixels "
                        "with data.to_float.")
    side = math.isqrt(params["w"].shape[0])
    if images.ndim < 2 or images.shape[-2:] != (side, side):
        raise ValueError(f"The linear model takes images (..., {side}, {side}), got shape {tuple(images.shape)}; "
                         f"reshape flat pixels with x.reshape(-1, {side}, {side}).")
    pixels = images.reshape(*images.shape[:-2], -1)
    scores = pixels @ params["w"]
    return scores + jnp.broadcast_to(params["b"], scores.shape)  # explicit: rank promotion raises


def templates(params: Params, image_shape: tuple[int, int] = (28, 28)) -> jax.Array:
    """The columns of `w` as images, one template per output: float `(num_outputs, H, W)`, in the
    weights' units (logit per unit of pixel intensity in [0, 1])."""
    return params["w"].T.reshape(-1, *image_shape)
