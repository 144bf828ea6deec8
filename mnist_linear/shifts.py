"""Integer translations of images as pure functions of (possibly traced) offsets.

Sign convention: +dx moves content right, +dy moves it down. Offsets may be
traced integer arrays, so one compiled program serves a whole grid of offsets
under `vmap`. Fill modes:

- "zeros": content moves, vacated pixels become 0, pixels pushed off the edge
  are lost (a digit on a blank canvas);
- "wrap": a circular roll; exactly invertible, preserves every pixel.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

FILLS = ("zeros", "wrap")


def check_offsets(offsets, size: int, name: str = "offset") -> None:
    """Raises ValueError unless every |offset| < size (the shift leaves part of the image)."""
    offsets = np.asarray(offsets)
    if offsets.size and np.abs(offsets).max() >= size:
        raise ValueError(
            f"{name} of {int(np.abs(offsets).max())} px is not smaller than the image size {size} px; "
            f"use offsets in [-{size - 1}, {size - 1}]."
        )


def translate(images: jax.Array, dx, dy, fill: str = "zeros") -> jax.Array:
    """Shifts `images` `(..., H, W)` by integer `dx` (right) and `dy` (down); same shape and dtype.

    `dx`, `dy`: scalars (Python ints or int arrays, traced or not). Concrete
    offsets are checked (|dx| < W, |dy| < H); check traced ones beforehand with
    `check_offsets`.
    """
    if fill not in FILLS:
        raise ValueError(f"Unknown fill {fill!r}; choose one of {FILLS}.")
    height, width = images.shape[-2:]
    for offset, size, name in ((dx, width, "dx"), (dy, height, "dy")):
        try:
            concrete = np.asarray(offset)
        except jax.errors.TracerArrayConversionError:
            continue  # traced: checked by the caller before tracing
        check_offsets(concrete, size, name)
    moved = jnp.roll(images, (dy, dx), axis=(-2, -1))
    if fill == "wrap":
        return moved
    source_row = jnp.arange(height) - dy  # where each output pixel came from
    source_col = jnp.arange(width) - dx
    inside = ((source_row >= 0) & (source_row < height))[:, None] & ((source_col >= 0) & (source_col < width))[None, :]
    return jnp.where(jnp.broadcast_to(inside, moved.shape), moved, jnp.zeros((), moved.dtype))


def translate_each(images: jax.Array, dx: jax.Array, dy: jax.Array, fill: str = "zeros") -> jax.Array:
    """A different shift per image: images `(N, H, W)`, dx and dy `(N,)`."""
    return jax.vmap(lambda x, i, j: translate(x, i, j, fill))(images, dx, dy)


def random_offsets(key: jax.Array, count: int, max_shift: int) -> tuple[jax.Array, jax.Array]:
    """(dx, dy), each `(count,)` int32, uniform on [-max_shift, max_shift]."""
    dx, dy = jax.random.randint(key, (2, count), -max_shift, max_shift + 1)
    return dx, dy


def random_shift(key: jax.Array, images: jax.Array, max_shift: int, fill: str = "zeros") -> jax.Array:
    """Augmentation: each image `(N, H, W)` shifted by its own uniform offset in [-max_shift, max_shift]²."""
    dx, dy = random_offsets(key, images.shape[0], max_shift)
    return translate_each(images, dx, dy, fill)


def offset_grid(max_shift: int) -> tuple[np.ndarray, np.ndarray]:
    """All (dx, dy) in [-K, K]², row-major over dy then dx: two int32 arrays `((2K+1)²,)`."""
    r = np.arange(-max_shift, max_shift + 1, dtype=np.int32)
    dy, dx = np.meshgrid(r, r, indexing="ij")
    return dx.ravel(), dy.ravel()
