"""The one evaluation path: model outputs over a seed axis × a transform grid, every image scored.

Images stay on the device as uint8 and are scored in chunks of `batch_size`
(the last chunk padded, then cut), so all N images count. Each chunk is
transformed once per grid point and then fed to all S models, whose
parameters carry a leading seed axis, split over every device
(`sharding.over_models`: `models_at_once` of them at a time, 0 for all of a device's; g ≥ 1 gives
the same numbers bit for bit on any number of devices; not `grid_worst_case`, whose loop takes the
images that any model still gets right). What is kept per image is the task's
`reduce` (the predicted class for classification, the raw outputs for
regression).
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from mnist_linear import checks, compiling, data, linear, sharding
from mnist_linear.models import Params

Apply = Callable[[Params, jax.Array], jax.Array]  # params, float images (B, H, W) -> outputs (B, K)
compiling.enable_cache()


def chunked(fn, arrays: tuple, batch_size: int):
    """Inside a program: `fn` over chunks of B = `batch_size` along the leading axis N of `arrays` (the
    last chunk padded with zeros, then cut); fn's outputs `(S, B, ...)` are joined back to `(S, N, ...)`."""
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
           per_example: bool = False, apply=None, linear_transform: bool = False, models_at_once: int = 0,
           **_) -> None:
    """The contract of `seed_outputs` and `grid_outputs`: images `(N, H, W)` or one `(H, W)`, uint8 or
    floats in [0, 1]; parameters sharing a leading seed axis S; grid arrays sharing P (and N when
    `per_example`); batch_size and points_at_once ≥ 1, models_at_once ≥ 0; `linear_transform` only for
    the linear model over a grid shared by every image."""
    if linear_transform and (apply is not linear.logits or per_example):
        raise ValueError("linear_transform=True moves each grid point's map onto the linear model's templates: it "
                         "needs apply=linear.logits and a grid shared by every image (per_example=False); "
                         "leave it False for any other model or grid.")
    one_image = len(images.shape) == 2 and images.shape[0] == images.shape[1]  # (H, H): flat (N, 784) is not
    checks.images(images[None] if one_image else images)
    seeds = {np.shape(p)[:1] for p in jax.tree.leaves(params)}
    if len(seeds) != 1 or () in seeds:
        raise ValueError(f"params must carry a leading seed axis S on every leaf (one model: "
                         f"jax.tree.map(lambda p: p[None], params)); got leading shapes {sorted(seeds)}.")
    shapes, num_images = [np.shape(g) for g in grid], images.shape[0] if len(images.shape) == 3 else 1
    if shapes and (() in shapes or len({s[0] for s in shapes}) != 1 or shapes[0][0] == 0
                   or per_example and any(s[:2] != (shapes[0][0], num_images) for s in shapes)):
        raise ValueError(f"grid arrays must share their length P ≥ 1{' and be (P, N)' if per_example else ''}; "
                         f"got shapes {shapes}.")
    checks.integer(batch_size, "batch_size")
    checks.integer(models_at_once, "models_at_once", least=0)
    if points_at_once is not None:
        checks.integer(points_at_once, "points_at_once")


def _check_grid(params, images, grid, **kwargs) -> None:
    """The contract of `grid_outputs`: `_check`'s, with a grid of one array or more."""
    if not isinstance(grid, (tuple, list)) or not grid:
        raise ValueError(f"grid must be a non-empty tuple or list of the transform's parameter arrays, each (P,) "
                         f"(or (P, N) with per_example=True), got {grid!r}; one parameter: (values,).")
    _check(params, images, grid, **kwargs)


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

    return chunked(chunk, (images, *(point if per_example else ())), batch_size)


@checks.before(_check)
@compiling.jit(static_argnames=("apply", "transform", "reduce", "batch_size", "models_at_once"))
def seed_outputs(params: Params, images: jax.Array, *, apply: Apply, transform: Callable | None = None,
                 reduce: Callable | None = None, batch_size: int = 1000, models_at_once: int = 0) -> jax.Array:
    """What S models keep on every image: `(S, N)` classes or `(S, N, K)` outputs.

    params: a pytree with a leading seed axis S; images: `(N, H, W)` uint8 or
    floats in [0, 1] (a single `(H, W)` image counts as N = 1);
    transform: `images -> images`, applied to every float chunk (a fixed input
    map such as a pixel permutation); reduce: e.g. a task's `reduce` (None keeps
    the raw outputs); models_at_once: see `sharding.over_models`. Raises TypeError or ValueError for
    bad inputs, before compiling.
    """
    run = functools.partial(_seed_outputs, images=images, point=(), apply=apply, transform=transform, reduce=reduce,
                            batch_size=batch_size, per_example=False)
    return sharding.cut(sharding.over_models(run, params, models_at_once), _num_models(params))


def _num_models(params) -> int:
    return jax.tree.leaves(params)[0].shape[0]


@checks.before(_check_grid)
@compiling.jit(static_argnames=("apply", "transform", "reduce", "batch_size", "points_at_once", "per_example",
                                "linear_transform", "models_at_once"))
def grid_outputs(params: Params, images: jax.Array, grid: tuple[jax.Array, ...], *, apply: Apply,
                 transform: Callable, reduce: Callable | None = None, batch_size: int = 1000,
                 points_at_once: int | None = None, per_example: bool = False,
                 linear_transform: bool = False, models_at_once: int = 0) -> jax.Array:
    """What S models keep on every image at each of P grid points: `(P, S, N)` or `(P, S, N, K)`.

    grid: the transform's parameters, each `(P,)` (one value per point), or
    `(P, N)` with `per_example=True` (one value per point and image; the
    transform then takes per-image parameters, see `transforms.each`).
    `transform(images (B, H, W), *point) -> images`. `points_at_once` vmaps that many
    points per step of a `lax.map` (None: all): a CNN's activations for every
    point at once can outgrow memory, a linear model's cannot. Images and shapes
    are checked as in `seed_outputs`; the values of traced transform parameters
    cannot be: check them first (`transforms.check_offsets`, say). models_at_once: see
    `sharding.over_models` (the models are split before the points are mapped).

    linear_transform: the caller's word that `transform` is linear in the pixels of images in [0, 1] at
    every point: it samples at places that do not depend on the image (every shift, pixel permutation,
    resize and affine map in `transforms`, zero or wrapped fill; `warp`'s clip to [0, 1] then changes
    nothing; not `centre` or `deskew`, which move each image by its own moments), for
    `apply=linear.logits`. Each point's map A then moves onto the templates: the logits of A x are
    x · (Aᵀ W) + b, so only the S·K templates are mapped (by Aᵀ, the map's vector-Jacobian product) and
    the S models at G points take one GEMM of each chunk of untransformed images. Equal to the direct
    path to float32 rounding (`tests/test_evaluate.py`). Raises ValueError for another model, a per-image
    grid, or a transform whose output does not have the model's pixel count.
    """
    num_points = jax.tree.leaves(grid)[0].shape[0]
    if linear_transform:
        at = functools.partial(_through_templates, images=images, transform=transform, reduce=reduce,
                               batch_size=batch_size)
    else:
        at = functools.partial(_seed_outputs, images=images, apply=apply, transform=transform, reduce=reduce,
                               batch_size=batch_size, per_example=per_example)

    def points(stack):  # (P, S', ...) from S' models
        return jax.lax.map(lambda point: at(stack, point=point), tuple(grid), batch_size=points_at_once or num_points)

    return sharding.cut(sharding.over_models(points, params, models_at_once, axis=1), _num_models(params), axis=1)


def _through_templates(params, images, point, *, transform, reduce, batch_size):
    """`(S, N, ...)`: S linear models on all images under one grid point, its map A moved onto the
    templates (A linear in the pixels): x · (Aᵀ W) + b."""
    w, b = params["w"], params["b"]  # (S, D, K), (S, K)
    (models, pixels, outputs), side = w.shape, math.isqrt(w.shape[1])
    images = images[None] if images.ndim == 2 else images
    # The Jacobian at mid-grey images, where `transforms.warp`'s clip to [0, 1] is inactive: each output
    # pixel reads 0.5 × the weights of the input pixels it samples (a pixel that samples none is 0, the clip's
    # edge, and has no Jacobian row to lose).
    grey = jnp.full((models * outputs, *images.shape[1:]), 0.5, jnp.float32)
    seen_shape = jax.eval_shape(lambda x: transform(x, *point), grey).shape
    if seen_shape[1:] != (side, side) or side * side != pixels:
        raise ValueError(f"The transform maps images {tuple(images.shape[1:])} to {tuple(seen_shape[1:])}, but the "
                         f"linear model takes {pixels} pixels: give it images that the transform maps to its size.")
    _, adjoint = jax.vjp(lambda x: transform(x, *point), grey)
    templates = jnp.moveaxis(w, -1, 1).reshape(models * outputs, side, side)  # one image per model and output
    (seen,) = adjoint(templates)  # Aᵀ of every template, (S·K, H, W) in the images' own size
    weights = jnp.moveaxis(seen.reshape(models, outputs, -1), 1, 2)  # (S, H·W, K)

    def chunk(args):
        x = data.to_float(args[0])
        out = jnp.einsum("bd,sdk->sbk", x.reshape(x.shape[0], -1), weights)
        out = out + jnp.broadcast_to(b[:, None, :], out.shape)
        return out if reduce is None else reduce(out)

    return chunked(chunk, (images,), batch_size)


def _check_worst_case(params, images, labels, grid, *, batch_size: int = 1000, points_at_once: int = 1, **_) -> None:
    """The contract of `grid_worst_case`: that of `grid_outputs` with images `(N, H, W)`, a grid of `(P,)`
    arrays, and labels `(N,)` in [0, 10)."""
    _check_grid(params, images, grid, batch_size=batch_size)
    if len(images.shape) != 3:
        raise ValueError(f"images must be (N, H, W), got shape {tuple(images.shape)}; one image: images[None].")
    checks.integer(points_at_once, "points_at_once")
    if any(len(np.shape(g)) != 1 for g in grid):
        raise ValueError(f"grid arrays must be (P,) each, one value per point (the same for every image); got "
                         f"shapes {[np.shape(g) for g in grid]}.")
    checks.labels(labels, data.NUM_CLASSES, images.shape[0])


@checks.before(_check_worst_case)
@compiling.jit(static_argnames=("apply", "transform", "batch_size", "points_at_once"))
def grid_worst_case(params: Params, images: jax.Array, labels: jax.Array, grid: tuple[jax.Array, ...], *,
                    apply: Apply, transform: Callable, batch_size: int = 1000,
                    points_at_once: int = 1) -> tuple[jax.Array, jax.Array]:
    """Which images each of S classifiers gets right at every one of P grid points (Engstrom et al. 2019,
    "Exploring the Landscape of Spatial Robustness": the grid adversary), exactly, without scoring every
    point of an image it already got wrong somewhere.

    Equal to `(grid_outputs(..., reduce=metrics.predict) == labels).all(0)`, at a fraction of the
    cost: a `lax.while_loop` takes, on each step, up to `batch_size` images that some model still gets
    right and that have points left, and scores each on its next `points_at_once` points (in the order
    given: put the likeliest failures first). An image is done once every model has got it wrong
    somewhere, or once it has been scored at all P points. One compiled program; shapes are static.

    params: leading seed axis S; images `(N, H, W)` uint8 or floats in [0, 1]; labels int `(N,)`;
    grid: the transform's parameters, `(P,)` each; `transform(image (H, W), *point)` with scalar
    parameters (it is vmapped over the images, each at its own point). Returns bool `(S, N)` (right
    at every point) and int32 `(N,)`: the points scored per image (P for every image some model
    survives). Raises TypeError or ValueError for bad inputs, before compiling.
    """
    num, num_points, num_models = images.shape[0], jax.tree.leaves(grid)[0].shape[0], _num_models(params)
    blocks, batch_size = -(-num_points // points_at_once), min(batch_size, num)
    params = sharding.split_models(params)
    # The last block is filled up with the first points again: scoring a point twice changes nothing.
    grid = tuple(jnp.resize(g, blocks * points_at_once) for g in grid)
    per_image = jax.vmap(transform)

    def pending(right, cursor):
        return right.any(0) & (cursor < blocks)

    def step(state):
        right, cursor = state
        # Padding slots point past the end: their gathers clamp and their scatters are dropped.
        (idx,) = jnp.nonzero(pending(right, cursor), size=batch_size, fill_value=num)
        x = data.to_float(images[idx])  # (B, H, W)
        points = cursor[idx][:, None] * points_at_once + jnp.arange(points_at_once)[None, :]  # (B, G)

        def at(point):  # (B,) parameters each: one point per image
            transformed = per_image(x, *point)
            return jax.vmap(lambda p: jnp.argmax(apply(p, transformed), -1))(params)  # (S, B)

        classes = jax.vmap(at)(tuple(g[points].T for g in grid))  # (G, S, B)
        still = right[:, idx] & (classes == labels[idx][None, None, :]).all(0)
        return right.at[:, idx].set(still, mode="drop"), cursor.at[idx].add(1, mode="drop")

    right, cursor = jax.lax.while_loop(lambda state: pending(*state).any(), step,
                                       (jnp.ones((_num_models(params), num), bool), jnp.zeros(num, jnp.int32)))
    return sharding.cut(right, num_models), sharding.whole(jnp.minimum(cursor * points_at_once, num_points))


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
