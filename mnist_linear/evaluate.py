"""The one evaluation path: model outputs over a seed axis × a transform grid, every image scored.

Images stay on the device as uint8 and are scored in chunks of `batch_size`
(the last chunk padded, then cut), so all N images count. Each chunk is
transformed once per grid point and then fed to all S models, whose
parameters carry a leading seed axis. What is kept per image is the task's
`reduce` (the predicted class for classification, the raw outputs for
regression).
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from mnist_linear import checks, data
from mnist_linear.models import Params

Apply = Callable[[Params, jax.Array], jax.Array]  # params, float images (B, H, W) -> outputs (B, K)


def _chunked(fn, arrays: tuple, batch_size: int):
    """`fn` over chunks of B along the leading axis N of `arrays`; fn's outputs `(S, B, ...)` are
    joined back to `(S, N, ...)`."""
    num = arrays[0].shape[0]
    chunks = -(-num // batch_size)
    pad = chunks * batch_size - num

    def split(a):
        a = jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1))
        return a.reshape(chunks, batch_size, *a.shape[1:])

    out = jax.lax.map(fn, tuple(split(a) for a in arrays))  # (chunks, S, B, ...)
    out = jnp.moveaxis(out, 0, 1)  # (S, chunks, B, ...)
    return out.reshape(out.shape[0], chunks * batch_size, *out.shape[3:])[:, :num]


def _check(params, images, grid=(), *, batch_size: int = 1000, points_at_once: int | None = None,
           per_example: bool = False, **_) -> None:
    """The contract of `seed_outputs` and `grid_outputs`: images `(N, H, W)` or one `(H, W)`, uint8 or
    floats in [0, 1]; parameters sharing a leading seed axis S; grid arrays sharing P (and N when
    `per_example`); batch_size and points_at_once ≥ 1."""
    one_image = len(images.shape) == 2 and images.shape[0] == images.shape[1]  # (H, H): flat (N, 784) is not
    checks.images(images[None] if one_image else images)
    seeds = {np.shape(p)[:1] for p in jax.tree.leaves(params)}
    if len(seeds) != 1 or () in seeds:
        raise ValueError(f"params must carry a leading seed axis S on every leaf (one model: "
                         f"jax.tree.map(lambda p: p[None], params)); got leading shapes {sorted(seeds)}.")
    shapes = [np.shape(g) for g in grid]
    want = (shapes[0][0], images.shape[0] if len(images.shape) == 3 else 1) if shapes else None
    if shapes and (len({s[:1] for s in shapes}) != 1 or shapes[0][0] == 0
                   or per_example and any(s[:2] != want for s in shapes)):
        raise ValueError(f"grid arrays must share their length P ≥ 1{' and be (P, N)' if per_example else ''}; "
                         f"got shapes {shapes}.")
    for name, value in (("batch_size", batch_size), ("points_at_once", points_at_once or 1)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an int ≥ 1, got {value!r}.")


def _seed_outputs(params, images, point, *, apply, transform, reduce, batch_size, per_example):
    """`(S, N, ...)`: the S models on all images under one grid point."""
    images = images[None] if images.ndim == 2 else images  # one image: N = 1
    shared = () if per_example else point

    def chunk(args):
        x = data.to_float(args[0])
        if transform is not None:
            x = transform(x, *shared, *args[1:])
        out = jax.vmap(lambda p: apply(p, x))(params)  # one transformed chunk, every model
        return out if reduce is None else reduce(out)

    return _chunked(chunk, (images, *(point if per_example else ())), batch_size)


@checks.before(_check)
@functools.partial(jax.jit, static_argnames=("apply", "transform", "reduce", "batch_size"))
def seed_outputs(params: Params, images: jax.Array, *, apply: Apply, transform: Callable | None = None,
                 reduce: Callable | None = None, batch_size: int = 1000) -> jax.Array:
    """What S models keep on every image: `(S, N)` classes or `(S, N, K)` outputs.

    params: a pytree with a leading seed axis S; images: `(N, H, W)` uint8 or
    floats in [0, 1] (a single `(H, W)` image counts as N = 1);
    transform: `images -> images`, applied to every float chunk (a fixed input
    map such as a pixel permutation); reduce: e.g. a task's `reduce` (None keeps
    the raw outputs). Raises TypeError or ValueError for bad inputs, before compiling.
    """
    return _seed_outputs(params, images, (), apply=apply, transform=transform, reduce=reduce,
                         batch_size=batch_size, per_example=False)


@checks.before(_check)
@functools.partial(jax.jit, static_argnames=("apply", "transform", "reduce", "batch_size", "points_at_once",
                                             "per_example"))
def grid_outputs(params: Params, images: jax.Array, grid: tuple[jax.Array, ...], *, apply: Apply,
                 transform: Callable, reduce: Callable | None = None, batch_size: int = 1000,
                 points_at_once: int | None = None, per_example: bool = False) -> jax.Array:
    """What S models keep on every image at each of P grid points: `(P, S, N)` or `(P, S, N, K)`.

    grid: the transform's parameters, each `(P,)` (one value per point), or
    `(P, N)` with `per_example=True` (one value per point and image; the
    transform then takes per-image parameters, see `transforms.each`).
    `transform(images (B, H, W), *point) -> images`. `points_at_once` vmaps that many
    points per step of a `lax.map` (None: all): a CNN's activations for every
    point at once can outgrow memory, a linear model's cannot. Images and shapes
    are checked as in `seed_outputs`; the values of traced transform parameters
    cannot be: check them first (`transforms.check_offsets`, say).
    """
    num_points = jax.tree.leaves(grid)[0].shape[0]
    at = functools.partial(_seed_outputs, params, images, apply=apply, transform=transform, reduce=reduce,
                           batch_size=batch_size, per_example=per_example)
    return jax.lax.map(at, tuple(grid), batch_size=points_at_once or num_points)


def outputs(apply: Apply, params: Params, images: jax.Array, *, reduce: Callable | None = None,
            batch_size: int = 1000) -> jax.Array:
    """One model (no seed axis) on every image `(N, H, W)`: `(N,)` or `(N, K)`. Pure: use it inside
    `jit` or `vmap`; a single `(H, H)` image counts as N = 1; images are checked as far as their
    values are known (`checks.images`)."""
    images = images[None] if len(images.shape) == 2 and images.shape[0] == images.shape[1] else images
    checks.images(images)
    one = jax.tree.map(lambda p: p[None], params)
    return _seed_outputs(one, images, (), apply=apply, transform=None, reduce=reduce, batch_size=batch_size,
                         per_example=False)[0]
