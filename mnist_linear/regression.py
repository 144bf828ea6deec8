"""Regression on real MNIST: three image-to-number problems for the same pipeline with T outputs and MSE.

Each `Problem` turns a `data.Split` into images and float targets `(N, T)` in the targets' own units,
the same way for the same key, on the device (keypoint, quality) or once on the host and cached
(morphometry):

- `keypoint` (T = 2): each digit pasted at a uniform random integer offset on a 40 × 40 canvas (the
  canvas of affNIST, Tieleman 2013); targets the (x, y) of its centre of mass in canvas pixels.
- `quality` (T = 1): each image blurred and noised by known, random amounts; target a score from 0 to
  10 that falls linearly with both (`quality_score`).
- `morphometry` (T = 2): stroke thickness (px) and slant (rad) of the original digit, by the
  definitions of Morpho-MNIST (Castro et al. 2019, "Morpho-MNIST: Quantitative Assessment and
  Diagnostics for Representation Learning"), measured with scikit-image (`morphometry`).

Models learn standardised targets (`Standardisation`, with training-split statistics); predictions
are mapped back, and `scores` reports MAE, RMSE and R² in the targets' units.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mnist_linear import checks, data, results, tasks, transforms

CANVAS = 40  # affNIST's canvas, px
MAX_BLUR = 2.0  # the largest Gaussian blur σ, px
MAX_NOISE = 0.4  # the largest std of the additive Gaussian noise, in intensity units (pixels in [0, 1])
MORPHO_SCALE = 4  # Morpho-MNIST measures on images upsampled 4×
MORPHO_THRESHOLD = 0.5  # ... binarised at half their intensity range


class Problem(NamedTuple):
    """A regression problem: how its images and targets are made, and what the targets are.

    make: `(key, split) -> split` with images (possibly new ones) and `targets` float32 `(N, T)`.
    shift_fill: the `transforms.translate` fill under which a test-time shift leaves the targets as
        they are, so a prediction that changes is an error; None where a shift moves the targets
        (keypoint). quality: "wrap", since zero fill would swap a strip of noise for clean zeros, a
        real change of quality; morphometry: "zeros", since a roll would carry ink across the image
        into a new stroke (zero fill instead cuts ink within d px of the edge: faint pixels of
        35% of MNIST's test digits at d = 3, 12% at d = 2).
    """

    name: str
    target_names: tuple[str, ...]
    units: tuple[str, ...]
    task: tasks.Task
    make: Callable[[jax.Array, data.Split], data.Split]
    shift_fill: str | None


# --- keypoint ---------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames="canvas")
def _paste(images, dx, dy, canvas):
    def one(image, x, y):
        return jax.lax.dynamic_update_slice(jnp.zeros((canvas, canvas), image.dtype), image, (y, x))

    return jax.vmap(one)(images, dx, dy)


def paste(images: jax.Array, dx, dy, canvas: int = CANVAS) -> jax.Array:
    """Each image `(N, H, W)` on a blank `canvas` × `canvas` with its top-left corner at column `dx[n]`,
    row `dy[n]` (int `(N,)`, 0 ≤ d ≤ canvas − size): `(N, canvas, canvas)`, dtype kept.
    Raises ValueError for a canvas smaller than the images or a concrete offset off it; traced offsets
    cannot be checked, and `lax.dynamic_update_slice` clamps them onto the canvas."""
    height, width = images.shape[-2:]
    if canvas < max(height, width):
        raise ValueError(f"canvas={canvas} is smaller than the {height} × {width} images.")
    for name, d, size in (("dx", dx, width), ("dy", dy, height)):
        values = checks.concrete(jnp.asarray(d))
        if values is not None and (values.min() < 0 or values.max() > canvas - size):
            raise ValueError(f"{name} must be in [0, {canvas - size}] to keep the image on the canvas, got "
                             f"[{values.min()}, {values.max()}].")
    return _paste(images, jnp.asarray(dx, jnp.int32), jnp.asarray(dy, jnp.int32), canvas)


def keypoints(key: jax.Array, split: data.Split, canvas: int = CANVAS) -> data.Split:
    """Digits pasted at uniform random integer offsets on a blank canvas (`paste`), with targets the
    (x, y) of each digit's centre of mass in canvas pixels (`transforms.centre_of_mass`): images uint8
    `(N, canvas, canvas)`, targets float32 `(N, 2)`. Raises ValueError for a blank image (it has no centre of mass)."""
    images = jnp.asarray(split.images)
    checks.images(images)
    _no_blank(images)
    n, height, width = images.shape
    kx, ky = jax.random.split(key)
    dx = jax.random.randint(kx, (n,), 0, canvas - width + 1)
    dy = jax.random.randint(ky, (n,), 0, canvas - height + 1)
    pasted = paste(images, dx, dy, canvas)
    return data.Split(pasted, split.labels, transforms.centre_of_mass(pasted))


def _no_blank(images: jax.Array) -> None:
    blank = np.flatnonzero(~np.asarray(jnp.any(images > 0, axis=(-2, -1))))
    if blank.size:
        raise ValueError(f"{blank.size} blank images (first at index {blank[0]}) have no centre of mass or "
                         "stroke to measure; leave them out.")


# --- quality ----------------------------------------------------------------------------------


def gaussian_blur(images: jax.Array, sigma: jax.Array) -> jax.Array:
    """Gaussian blur of std `sigma` px per image, zero outside the image: float `(..., H, W)` and sigma
    `(...)` ≥ 0 (0 leaves the image as it is) -> `(..., H, W)`. Along each axis of n pixels the kernel spans
    the whole image and is normalised over that span: `scipy.ndimage.gaussian_filter(mode="constant")`
    with `truncate=(n - 1)/sigma` on that axis."""
    sigma = jnp.asarray(sigma, jnp.float32)[..., None, None]

    safe = jnp.maximum(sigma, 1e-3)  # σ → 0: the kernel becomes the identity

    def matrix(n):
        offsets = jnp.arange(n)[:, None] - jnp.arange(n)[None, :]  # (n, n)
        shape = (*safe.shape[:-2], n, n)
        kernel = jnp.exp(-0.5 * (jnp.broadcast_to(offsets, shape) / jnp.broadcast_to(safe, shape)) ** 2)
        span = jnp.arange(-(n - 1), n, dtype=jnp.float32)  # every offset the kernel can take, to normalise it
        spans = (*safe.shape[:-2], 2 * n - 1)
        total = jnp.exp(-0.5 * (jnp.broadcast_to(span, spans) / jnp.broadcast_to(safe[..., 0], spans)) ** 2)
        total = total.sum(-1)[..., None, None]
        return kernel / jnp.broadcast_to(total, shape)

    height, width = images.shape[-2:]
    return matrix(height) @ images @ jnp.swapaxes(matrix(width), -1, -2)


def quality_score(blur, noise, max_blur: float = MAX_BLUR, max_noise: float = MAX_NOISE):
    """The quality score `10 · (1 − (blur / max_blur + noise / max_noise) / 2)`: 10 for a clean image, 0 for
    the worst degradation, in [0, 10] while blur ≤ max_blur and noise ≤ max_noise (as `quality` draws
    them); it falls linearly with each. blur in px, noise in intensity units; arrays of any matching shape."""
    return 10.0 * (1.0 - 0.5 * (blur / max_blur + noise / max_noise))


@jax.jit
def degrade(key: jax.Array, images: jax.Array, blur: jax.Array, noise: jax.Array) -> jax.Array:
    """`images` `(N, H, W)` (uint8 or floats in [0, 1]) blurred by `blur` px (`gaussian_blur`), plus
    Gaussian noise of std `noise` (intensity units), both `(N,)`; clipped and quantised: uint8 `(N, H, W)`."""
    x = gaussian_blur(data.to_float(images), blur)
    x = x + noise[:, None, None] * jax.random.normal(key, x.shape)
    return jnp.round(255.0 * jnp.clip(x, 0.0, 1.0)).astype(jnp.uint8)


def quality(key: jax.Array, split: data.Split, max_blur: float = MAX_BLUR, max_noise: float = MAX_NOISE) -> data.Split:
    """Each image blurred by σ ~ U[0, max_blur] px (`gaussian_blur`), given additive Gaussian noise of std
    s ~ U[0, max_noise], clipped to [0, 1] and quantised back to uint8 like a saved image; target
    `quality_score(σ, s)`, float32 `(N, 1)` in [0, 10]. Raises ValueError unless both maxima are > 0."""
    if not (max_blur > 0 and max_noise > 0):
        raise ValueError(f"max_blur and max_noise must be > 0, got {max_blur} and {max_noise}.")
    images = jnp.asarray(split.images)
    checks.images(images)
    k_blur, k_noise, k_pixels = jax.random.split(key, 3)
    n = images.shape[0]
    blur = max_blur * jax.random.uniform(k_blur, (n,))
    noise = max_noise * jax.random.uniform(k_noise, (n,))
    degraded = jnp.concatenate([degrade(jax.random.fold_in(k_pixels, i), images[i:i + 10_000], blur[i:i + 10_000],
                                         noise[i:i + 10_000]) for i in range(0, n, 10_000)])  # bounded memory
    return data.Split(degraded, split.labels, quality_score(blur, noise, max_blur, max_noise)[:, None])


# --- morphometry ------------------------------------------------------------------------------


def measure(image: np.ndarray) -> tuple[float, float]:
    """(thickness in px, slant in rad) of one uint8 digit `(H, W)`, by Morpho-MNIST's definitions.

    As in Morpho-MNIST's `measure_image`: the image is upsampled 4× (`skimage.transform.pyramid_expand`,
    bicubic) and quantised to uint8, binarised at half its intensity range; thickness is twice the mean
    Euclidean distance to the background along the skeleton, divided by 4; slant is
    arctan(−μ11/μ02) of the upsampled image's central moments (x: column, y: row, so a digit whose top
    leans right has positive slant). One difference: the skeleton is `skimage.morphology.skeletonize`
    (thinning), where the paper uses `medial_axis`, about 10× slower per image; on real digits the mean
    thickness agrees to a few hundredths of a pixel and single digits differ by 0.05 px on average
    (tests/test_regression.py bounds both).
    Raises TypeError unless the image is uint8, ValueError for a blank one.
    """
    from scipy import ndimage
    from skimage import morphology, transform

    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(f"measure takes a uint8 digit (pixels 0–255), got {image.dtype}.")
    if not np.any(image):
        raise ValueError("A blank image has no stroke to measure.")
    hires = (255.0 * transform.pyramid_expand(image, upscale=MORPHO_SCALE, order=3)).astype(np.uint8)
    low, high = int(hires.min()), int(hires.max())
    binary = hires >= low + (high - low) * MORPHO_THRESHOLD
    skeleton = morphology.skeletonize(binary)
    thickness = 2.0 * ndimage.distance_transform_edt(binary)[skeleton].mean() / MORPHO_SCALE
    y, x = np.indices(hires.shape, dtype=np.float64)
    w = hires / hires.sum()
    mx, my = (w * x).sum(), (w * y).sum()
    mu11, mu02 = (w * (x - mx) * (y - my)).sum(), (w * (y - my) ** 2).sum()
    return float(thickness), float(np.arctan(-mu11 / mu02))


def morphometry(images, cache: bool = True) -> np.ndarray:
    """`measure` of every image: uint8 `(N, H, W)` -> float32 `(N, 2)`, (thickness px, slant rad).

    About 1.5 ms an image on one CPU core; the result is kept in `data.cache_dir()/morphometry`, keyed by
    the images' bytes, so each set of images is measured once. Raises ValueError for a blank image.
    """
    images = np.asarray(images)
    checks.images(images)
    if images.dtype != np.uint8:
        raise TypeError(f"morphometry measures uint8 digits, got {images.dtype}.")
    import skimage

    # The key names the method and scikit-image's version too: a change in either measures afresh.
    method = ("skeletonize", MORPHO_SCALE, MORPHO_THRESHOLD, skimage.__version__, images.shape)
    digest = hashlib.sha256(images.tobytes() + repr(method).encode())
    path = data.cache_dir() / "morphometry" / f"{digest.hexdigest()[:24]}.npy"
    if cache and path.exists():
        return np.load(path)
    print(f"measuring the thickness and slant of {len(images):,} digits (about {1.5e-3 * len(images):.0f} s, "
          "once: the result is cached)")
    measured = np.array([measure(image) for image in images], np.float32).reshape(-1, 2)
    if cache:
        with results.atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.save(f, measured)
    return measured


def morphometry_split(key: jax.Array, split: data.Split) -> data.Split:
    """The images as they are, with targets `morphometry(images)`; `key` is unused (nothing is random)."""
    del key
    return data.Split(split.images, split.labels, morphometry(split.images))


# --- standardisation and scores -------------------------------------------------------------


class Standardisation(NamedTuple):
    """Per-target mean and std of the training targets: models learn `apply(y)`, `invert` maps back."""

    mean: np.ndarray  # (T,) float64, targets' units
    std: np.ndarray  # (T,) float64, targets' units

    @classmethod
    def of(cls, targets) -> "Standardisation":
        """From training targets `(N, T)`; raises ValueError for a constant target (nothing to learn)."""
        targets = np.asarray(targets)
        if targets.ndim != 2:
            raise ValueError(f"Targets must be (N, T), got shape {targets.shape}; a single target is a column: "
                             "y[:, None].")
        checks.targets(targets, targets.shape[1])
        y = targets.astype(np.float64)
        std = y.std(axis=0)
        if not (std > 0).all():
            raise ValueError(f"Target {np.flatnonzero(std == 0).tolist()} is constant over the training split.")
        return cls(y.mean(axis=0), std)

    def apply(self, targets) -> np.ndarray:
        return ((np.asarray(targets, np.float64) - self.mean) / self.std).astype(np.float32)

    def invert(self, outputs) -> np.ndarray:
        """Standardised outputs `(..., T)` -> float64 in the targets' units."""
        return self.mean + self.std * np.asarray(outputs, np.float64)


def scores(predictions, targets) -> dict[str, np.ndarray]:
    """MAE and RMSE (targets' units) and R² per target, over the images: predictions `(..., N, T)` and
    targets `(N, T)` -> each `(..., T)`, float64. R² is the coefficient of determination,
    1 − Σ(y − ŷ)² / Σ(y − ȳ)²: 0 for predicting the mean, 1 for a perfect fit, negative for worse
    than the mean. Raises ValueError when the trailing `(N, T)` shapes differ."""
    p, y = np.asarray(predictions, np.float64), np.asarray(targets, np.float64)
    if y.ndim != 2 or p.shape[-2:] != y.shape:
        raise ValueError(f"scores takes predictions (..., N, T) and targets (N, T), got {p.shape} and {y.shape}.")
    error = p - y
    return {"mae": np.abs(error).mean(-2), "rmse": np.sqrt((error ** 2).mean(-2)),
            "r2": 1.0 - (error ** 2).sum(-2) / ((y - y.mean(0)) ** 2).sum(0)}


def _problem(name, target_names, units, make, shift_fill) -> Problem:
    return Problem(name, target_names, units, tasks.regression(name, len(target_names)), make, shift_fill)


PROBLEMS = {
    "keypoint": _problem("keypoint", ("x", "y"), ("px", "px"), keypoints, None),
    "quality": _problem("quality", ("score",), ("points of 10",), quality, "wrap"),
    "morphometry": _problem("morphometry", ("thickness", "slant"), ("px", "rad"), morphometry_split, "zeros"),
}
