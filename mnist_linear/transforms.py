"""Every input map, one signature: `transform(images, *params) -> images`.

`images` are float `(..., H, W)` (uint8 too where a map only moves pixels:
translate and permute_pixels); the
parameters may be traced arrays, so one compiled program covers a whole grid of
them under `vmap`. A map whose parameter differs per image is `each(transform)`.

Coordinates: x is the column (+ is right), y the row (+ is down), pixel
centres at integers. The affine maps follow the MNIST-C benchmark (Mu & Gilmer
2019, "MNIST-C: A Robustness Benchmark for Computer Vision",
google-research/mnist-c `corruptions.py`): scikit-image's `warp` with an
`inverse_map` that sends each output pixel to the input point it samples,
about the image centre ((W - 1)/2, (H - 1)/2) = (13.5, 13.5) for 28 × 28,
bilinear interpolation, zero fill outside the image. In the output pixel's
offset (u, v) from the centre, the input point sampled is centre + A (u, v):

- `rotate(θ)`: A = [[cos θ, −sin θ], [sin θ, cos θ]]; content turns
  counter-clockwise as displayed for θ > 0 (like `skimage.transform.rotate`).
  MNIST-C's rotate is θ = ±c radians, c = 0.2, 0.4, …, 1.0 at severity 1…5.
- `shear(φ)`: A = [[1, −sin φ], [0, cos φ]], scikit-image's
  `AffineTransform(shear=φ)` as MNIST-C used it (versions before 0.21); MNIST-C's
  shear is φ = ±c radians, c = 0.2 … 1.0.
- `scale(s)`: A = I / s, so content grows by s (s < 1 shrinks it); MNIST-C's
  scale is s = 0.9, 0.8, …, 0.5.
- `translate(dx, dy)`: integer shifts by indexing (exact), with zero or wrap
  fill; MNIST-C's translate is (±c, ±c) px, c = 1 … 5, a sign per axis.

Angles here are in degrees; `np.degrees` converts MNIST-C's radians. Each affine map is also a
(matrix, offset) pair (`rotation_matrix`, `shear_matrix`, `scale_matrix`, `rotate_translate_affine`)
for `warp` (`affine` clipped to [0, 1]), so a grid mixing them is one traced program. `mnist_c` draws
MNIST-C's corruptions at its five severities (`MNIST_C`; `random_mnist_c` augments with them);
`rotate_translate`, `spatial_grid` and `random_spatial` are the worst-case grid of Engstrom et al.
2019 ("Exploring the Landscape of Spatial Robustness"). `centre` and `deskew` are the moment-based
normalisations of LeCun et al. 1998 (centring by the centre of mass; shearing the second-moment
skew away).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from mnist_linear import checks

Transform = Callable[..., jax.Array]  # (images (..., H, W), *params) -> images
FILLS = ("zeros", "wrap")


def each(transform: Transform) -> Transform:
    """`transform` with its own parameters per image: images `(N, H, W)`, every param `(N,)`."""
    return jax.vmap(transform)


# ----- translations: integer, exact -----

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

    `dx`, `dy`: int scalars, traced or not. "zeros": vacated pixels become 0 and
    content pushed off the edge is lost (a digit on a blank canvas); "wrap": a
    circular roll, exactly invertible. Concrete offsets are checked (|dx| < W,
    |dy| < H); check traced ones beforehand with `check_offsets`.

    Raises ValueError for an unknown fill or an offset as large as the image, TypeError for an offset
    that is not an integer.
    """
    if fill not in FILLS:
        raise ValueError(f"Unknown fill {fill!r}; choose one of {FILLS}.")
    height, width = images.shape[-2:]
    for offset, size, name in ((dx, width, "dx"), (dy, height, "dy")):
        if not jnp.issubdtype(jnp.result_type(offset), jnp.integer):
            raise TypeError(f"{name} must be an integer number of pixels, got {offset!r}; use affine() for "
                            "sub-pixel shifts.")
        if not isinstance(offset, jax.core.Tracer):
            check_offsets(offset, size, name)
    moved = jnp.roll(images, (dy, dx), axis=(-2, -1))
    if fill == "wrap":
        return moved
    inside = _inside(jnp.arange(height) - dy, height)[:, None] & _inside(jnp.arange(width) - dx, width)[None, :]
    return jnp.where(jnp.broadcast_to(inside, moved.shape), moved, jnp.zeros((), moved.dtype))


def translate_filled(images: jax.Array, dx, dy, wrap) -> jax.Array:
    """`translate` with the fill as a traced bool (`wrap`), so both fills share one compiled grid."""
    return jnp.where(wrap, translate(images, dx, dy, "wrap"), translate(images, dx, dy, "zeros"))


def random_offsets(key: jax.Array, count: int, max_shift: int) -> tuple[jax.Array, jax.Array]:
    """(dx, dy), each int32 `(count,)`, uniform on [-max_shift, max_shift]. Raises ValueError unless
    max_shift is an int ≥ 0 (a traced one is not checked)."""
    if not isinstance(max_shift, jax.core.Tracer):
        checks.integer(max_shift, "max_shift", least=0)
    dx, dy = jax.random.randint(key, (2, count), -max_shift, max_shift + 1)
    return dx, dy


def random_shift(key: jax.Array, images: jax.Array, max_shift: int, fill: str = "zeros") -> jax.Array:
    """Augmentation: each image of `(N, H, W)` shifted by its own uniform offset in [-max_shift, max_shift]².
    Raises ValueError unless max_shift is an int in [0, min(H, W)) (a traced one is not checked) or for an
    unknown fill."""
    if not isinstance(max_shift, jax.core.Tracer):
        checks.integer(max_shift, "max_shift", least=0)
        check_offsets(max_shift, min(images.shape[-2:]), "max_shift")
    dx, dy = random_offsets(key, images.shape[0], max_shift)
    return each(lambda x, i, j: translate(x, i, j, fill))(images, dx, dy)


def offset_grid(max_shift: int) -> tuple[np.ndarray, np.ndarray]:
    """All (dx, dy) in [-K, K]², row-major over dy then dx: two int32 arrays `((2K+1)²,)`."""
    r = np.arange(-max_shift, max_shift + 1, dtype=np.int32)
    dy, dx = np.meshgrid(r, r, indexing="ij")
    return dx.ravel(), dy.ravel()


# ----- moments: centring and deskewing -----

def centre_of_mass(images: jax.Array) -> jax.Array:
    """Intensity-weighted mean pixel position (x: column, y: row; pixel centres at integers):
    images `(..., H, W)`, uint8 or float -> float32 `(..., 2)` as (x, y), in px. nan for a blank image."""
    x = jnp.asarray(images, jnp.float32)
    mass = x.sum(axis=(-2, -1))
    cx = x.sum(axis=-2) @ jnp.arange(x.shape[-1], dtype=jnp.float32) / mass
    cy = x.sum(axis=-1) @ jnp.arange(x.shape[-2], dtype=jnp.float32) / mass
    return jnp.stack([cx, cy], axis=-1)


def centre(images: jax.Array) -> jax.Array:
    """Each image `(N, H, W)` shifted by whole pixels so its centre of mass lands as near the image centre
    ((W - 1)/2, (H - 1)/2) as whole pixels allow (MNIST's own preprocessing, LeCun et al. 1998:
    "centered ... by computing the center of mass of the pixels, and translating the image so as to
    position this point at the center"); zero fill, dtype kept; a blank image stays as it is.
    The offset is floor(centre − c + 1/2), so an image shifted by whole pixels first is centred the same."""
    height, width = images.shape[-2:]
    com = centre_of_mass(images)
    target = jnp.broadcast_to(jnp.array([(width - 1) / 2, (height - 1) / 2], jnp.float32), com.shape)
    offset = jnp.floor(target - com + 0.5)
    offset = jnp.where(jnp.isfinite(offset), offset, 0.0).astype(jnp.int32)
    return each(translate)(images, offset[:, 0], offset[:, 1])


def skew(images: jax.Array) -> jax.Array:
    """The horizontal shear of each image from its second moments, μ11 / μ02 (px of x per px of y; a
    stroke whose top leans right has a negative skew, y being the row): `(..., H, W)` -> float32 `(...)`."""
    x = jnp.asarray(images, jnp.float32)
    batch, (height, width) = x.shape[:-2], x.shape[-2:]
    com = centre_of_mass(x)
    u = jnp.broadcast_to(jnp.arange(width, dtype=jnp.float32), (*batch, width)) - com[..., :1]  # (..., W)
    v = jnp.broadcast_to(jnp.arange(height, dtype=jnp.float32), (*batch, height)) - com[..., 1:]  # (..., H)
    mu11 = jnp.einsum("...h,...w,...hw->...", v, u, x)  # both moments over the same mass, which cancels
    mu02 = jnp.einsum("...h,...h,...hw->...", v, v, x)
    return mu11 / mu02


def deskew(images: jax.Array) -> jax.Array:
    """Deskewing (LeCun et al. 1998; the linear classifier's error falls from 12.0 to 8.4 % with it): each
    float image `(N, H, W)` is sheared horizontally by minus its `skew` about its centre of mass and
    moved so that point lands at the image centre; bilinear, zero fill. Output pixel (u, v) from the
    centre samples the input at (cx + u + skew · v, cy + v). A blank image (no moments) stays as it is."""
    com, alpha = centre_of_mass(images), skew(images)
    blank = ~jnp.isfinite(alpha)
    alpha = jnp.where(blank, 0.0, alpha)
    one, zero = jnp.ones_like(alpha), jnp.zeros_like(alpha)
    matrices = jnp.stack([jnp.stack([one, alpha], -1), jnp.stack([zero, one], -1)], -2)  # (N, 2, 2)
    height, width = images.shape[-2:]
    offsets = com - jnp.broadcast_to(jnp.array([(width - 1) / 2, (height - 1) / 2], jnp.float32), com.shape)
    offsets = jnp.where(blank[:, None], 0.0, offsets)
    return each(affine)(images, matrices, offsets)


# ----- affine maps: bilinear, zero fill, about the centre (MNIST-C) -----

def affine(images: jax.Array, matrix: jax.Array, offset=(0.0, 0.0)) -> jax.Array:
    """Samples each output pixel at centre + matrix @ (u, v) + offset of the input, bilinearly.

    images: float `(..., H, W)`; matrix: `(2, 2)` acting on (x, y) offsets from the
    centre ((W - 1)/2, (H - 1)/2), in px; offset: (x, y) in px. Points outside
    the image read 0. The identity matrix with an integer offset (a, b) equals
    `translate(images, -a, -b)`. Raises TypeError for integer images.
    """
    if not jnp.issubdtype(images.dtype, jnp.floating):
        raise TypeError(f"Affine maps interpolate: they take float images in [0, 1], got {images.dtype} "
                        "(data.to_float converts uint8 pixels).")
    height, width = images.shape[-2:]
    matrix = jnp.asarray(matrix, jnp.float32)
    cy, cx = (height - 1) / 2, (width - 1) / 2
    v, u = jnp.meshgrid(jnp.arange(height) - cy, jnp.arange(width) - cx, indexing="ij")
    x = matrix[0, 0] * u + matrix[0, 1] * v + cx + offset[0]
    y = matrix[1, 0] * u + matrix[1, 1] * v + cy + offset[1]
    return _bilinear(images, y, x)


def rotation_matrix(degrees) -> jax.Array:
    """`affine`'s matrix of `rotate`: degrees `(...)` -> float32 `(..., 2, 2)`."""
    t = jnp.deg2rad(jnp.asarray(degrees, jnp.float32))
    return _matrix(jnp.cos(t), -jnp.sin(t), jnp.sin(t), jnp.cos(t))


def shear_matrix(degrees) -> jax.Array:
    """`affine`'s matrix of `shear`: degrees `(...)` -> float32 `(..., 2, 2)`."""
    t = jnp.deg2rad(jnp.asarray(degrees, jnp.float32))
    return _matrix(jnp.ones_like(t), -jnp.sin(t), jnp.zeros_like(t), jnp.cos(t))


def scale_matrix(factor) -> jax.Array:
    """`affine`'s matrix of `scale`: factors `(...)` -> float32 `(..., 2, 2)`. Raises ValueError for a
    concrete factor ≤ 0."""
    if not isinstance(factor, jax.core.Tracer) and not np.all(np.asarray(factor) > 0):
        raise ValueError(f"scale factor must be > 0, got {factor!r}.")
    inverse = 1 / jnp.asarray(factor, jnp.float32)
    zero = jnp.zeros_like(inverse)
    return _matrix(inverse, zero, zero, inverse)


def _matrix(a, b, c, d) -> jax.Array:
    """[[a, b], [c, d]] from arrays of one shape `(...)`: `(..., 2, 2)`."""
    return jnp.stack([jnp.stack([a, b], -1), jnp.stack([c, d], -1)], -2)


def rotate(images: jax.Array, degrees) -> jax.Array:
    """Rotation by `degrees` (counter-clockwise as displayed) about the centre; float `(..., H, W)`."""
    return affine(images, rotation_matrix(degrees))


def shear(images: jax.Array, degrees) -> jax.Array:
    """MNIST-C's shear by the angle `degrees` (scikit-image's `AffineTransform(shear=...)` before 0.21)."""
    return affine(images, shear_matrix(degrees))


def scale(images: jax.Array, factor) -> jax.Array:
    """Zoom by `factor` about the centre (factor < 1 shrinks the digit); float `(..., H, W)`.
    Raises ValueError for a concrete factor ≤ 0."""
    return affine(images, scale_matrix(factor))


def warp(images: jax.Array, matrix: jax.Array, offset) -> jax.Array:
    """`affine`, clipped to [0, 1] as MNIST-C clips (scikit-image's `warp(..., clip=True)`): the one map
    every spatial grid here evaluates, since each of rotate, shear, scale and translate is one
    (matrix, offset). float `(..., H, W)` -> same."""
    return jnp.clip(affine(images, matrix, offset), 0.0, 1.0)


def translate_or_warp(images: jax.Array, matrix: jax.Array, offset, dx, dy, exact) -> jax.Array:
    """`translate(images, dx, dy)` (exact integer indexing, the shift grid's path) where the traced bool
    `exact` holds, else `warp(images, matrix, offset)`: shifts and affine maps in one traced grid (both
    are computed; the shift costs next to nothing). float `(..., H, W)`."""
    return jnp.where(exact, translate(images, dx, dy), warp(images, matrix, offset))


def random_rotate_translate(key: jax.Array, images: jax.Array, max_shift: float, max_degrees: float) -> jax.Array:
    """Augmentation with Engstrom et al.'s family: each float image `(N, H, W)` rotated and translated by
    its own draw of `random_spatial` (uniform on ±`max_degrees`°, ±`max_shift` px)."""
    dx, dy, degrees = (d[0] for d in random_spatial(key, 1, images.shape[0], max_shift, max_degrees))
    return each(rotate_translate)(images, dx, dy, degrees)


def rotate_translate(images: jax.Array, dx, dy, degrees) -> jax.Array:
    """The content rotated by `degrees` about the centre, then moved by (dx, dy) px (sub-pixel allowed):
    the transformation of Engstrom et al. 2019 ("Exploring the Landscape of Spatial Robustness"),
    bilinear, zero fill. float `(..., H, W)`; scalar parameters (use `each` for one per image)."""
    return warp(images, *rotate_translate_affine(dx, dy, degrees))


def rotate_translate_affine(dx, dy, degrees) -> tuple[jax.Array, jax.Array]:
    """`rotate_translate` as `affine`'s (matrix `(..., 2, 2)`, offset `(..., 2)`), float32, for parameters
    of one shape `(...)`: the output pixel u samples the input at centre + A (u − d)."""
    matrix = rotation_matrix(degrees)
    shift = jnp.stack([jnp.asarray(dx, jnp.float32), jnp.asarray(dy, jnp.float32)], -1)
    return matrix, -jnp.einsum("...ij,...j->...i", matrix, shift)


def spatial_grid(max_shift: float, max_degrees: float, points: tuple[int, int, int]) -> tuple[np.ndarray, ...]:
    """Engstrom et al.'s exhaustive grid: `points` = (nx, ny, nθ) evenly spaced values in [-max_shift,
    max_shift] px, [-max_shift, max_shift] px and [-max_degrees, max_degrees]°, every combination:
    (dx, dy, degrees), float32 `(nx·ny·nθ,)` each. Their MNIST and CIFAR grid: ±3 px, ±30°, (5, 5, 31)
    (MadryLab/adversarial_spatial `config.json`). Raises ValueError for fewer than one point per axis."""
    if len(points) != 3 or min(points) < 1:
        raise ValueError(f"points must be three counts ≥ 1 (dx, dy, angle), got {points!r}.")
    axes = [np.linspace(-limit, limit, n, dtype=np.float32)
            for limit, n in zip((max_shift, max_shift, max_degrees), points)]
    return tuple(a.ravel() for a in np.meshgrid(*axes, indexing="ij"))


def random_spatial(key: jax.Array, tries: int, count: int, max_shift: float,
                   max_degrees: float) -> tuple[jax.Array, ...]:
    """Engstrom et al.'s "worst of k random": per image, `tries` draws uniform on the continuous ranges
    (not from the grid): (dx, dy, degrees), float32 `(tries, count)` each. Raises ValueError for fewer
    than one try or a negative limit."""
    if tries < 1 or min(max_shift, max_degrees) < 0:
        raise ValueError(f"random_spatial needs tries ≥ 1 and limits ≥ 0, got tries={tries}, "
                         f"max_shift={max_shift}, max_degrees={max_degrees}.")
    limits = jnp.array([max_shift, max_shift, max_degrees], jnp.float32)[:, None, None]
    dx, dy, degrees = jax.random.uniform(key, (3, tries, count), jnp.float32, -1.0, 1.0) * limits
    return dx, dy, degrees


def _inside(index: jax.Array, size: int) -> jax.Array:
    return (index >= 0) & (index < size)


def _bilinear(images: jax.Array, y: jax.Array, x: jax.Array) -> jax.Array:
    """Bilinear samples of `images` `(..., H, W)` at float points `(H', W')`; 0 outside."""
    height, width = images.shape[-2:]
    y0, x0 = jnp.floor(y), jnp.floor(x)
    top, left = y0.astype(jnp.int32), x0.astype(jnp.int32)
    rows, cols = jnp.stack([top, top, top + 1, top + 1]), jnp.stack([left, left + 1, left, left + 1])
    weight_y = jnp.stack([1 - (y - y0), 1 - (y - y0), y - y0, y - y0])
    weight_x = jnp.stack([1 - (x - x0), x - x0, 1 - (x - x0), x - x0])
    weights = jnp.where(_inside(rows, height) & _inside(cols, width), weight_y * weight_x, 0.0)  # (4, H', W')
    # One gather from the flat image, and a reduction rather than a chain of adds: XLA would fuse the adds,
    # weights and all, into every consumer (25 times into a 5×5 im2col), where a reduction is computed once.
    # (The adds behind an optimisation barrier instead: spatial's CNN programs 1.3× slower, its linear ones
    # 1.2× faster, in its cpu preset. jnp.take's mode="clip" instead of its default: the per-image warps
    # of a linear model's training 2× slower.)
    flat = images.reshape(*images.shape[:-2], height * width)
    index = jnp.clip(rows, 0, height - 1) * width + jnp.clip(cols, 0, width - 1)
    values = jnp.take(flat, index, axis=-1)  # (..., 4, H', W'); the indices are in bounds
    return (values * jnp.broadcast_to(weights.astype(images.dtype), values.shape)).sum(-3)


# ----- MNIST-C's spatial corruptions -----

# Magnitude at severity 1…5 (Mu & Gilmer 2019; google-research/mnist-c `corruptions.py`).
MNIST_C = {
    "rotate": (0.2, 0.4, 0.6, 0.8, 1.0),  # radians, a random sign per image
    "shear": (0.2, 0.4, 0.6, 0.8, 1.0),  # radians, a random sign per image
    "scale": (0.9, 0.8, 0.7, 0.6, 0.5),  # zoom factor (the digit shrinks), no sign
    "translate": (1, 2, 3, 4, 5),  # px along each axis, a random sign per axis and image
}


def mnist_c_params(key: jax.Array, count: int, corruption: str, severity: int) -> tuple[jax.Array, ...]:
    """The per-image parameters MNIST-C draws for `count` images: rotate and shear, degrees `(count,)`;
    scale, the factor `(count,)`; translate, (dx, dy) int32 `(count,)` each (how the content moves).
    Raises ValueError for an unknown corruption or a severity outside 1…5."""
    if corruption not in MNIST_C:
        raise ValueError(f"Unknown corruption {corruption!r}; MNIST-C's spatial ones are {tuple(MNIST_C)}.")
    if severity not in (1, 2, 3, 4, 5):
        raise ValueError(f"MNIST-C's severities are 1…5, got {severity!r}.")
    c = MNIST_C[corruption][severity - 1]
    if corruption == "scale":
        return (jnp.full((count,), c, jnp.float32),)
    signs = jax.random.choice(key, jnp.array([-1, 1], jnp.int32), (2, count))
    if corruption == "translate":
        return signs[0] * c, signs[1] * c
    return (jnp.float32(np.degrees(c)) * signs[0],)


def mnist_c_affine(key: jax.Array, count: int, corruption: str, severity: int) -> tuple[jax.Array, jax.Array]:
    """`mnist_c_params` as `affine`'s (matrix, offset) per image: float32 `(count, 2, 2)` and `(count, 2)`,
    so every corruption at every severity is one per-image grid of `warp`."""
    params = mnist_c_params(key, count, corruption, severity)
    if corruption == "translate":
        dx, dy = params
        identity = jnp.broadcast_to(jnp.eye(2, dtype=jnp.float32), (count, 2, 2))
        return identity, -jnp.stack([dx, dy], -1).astype(jnp.float32)  # exact at integer offsets
    matrix = {"rotate": rotation_matrix, "shear": shear_matrix, "scale": scale_matrix}[corruption](params[0])
    return matrix, jnp.zeros((count, 2), jnp.float32)


def mnist_c(key: jax.Array, images: jax.Array, corruption: str, severity: int) -> jax.Array:
    """MNIST-C's `corruption` at `severity` on float images `(N, H, W)` in [0, 1]: each image with its own
    draw of `mnist_c_params` (the sign, as MNIST-C draws it per image), through `warp` (inverse map
    about (13.5, 13.5), bilinear, zero fill, clipped to [0, 1])."""
    return each(warp)(images, *mnist_c_affine(key, images.shape[0], corruption, severity))


def random_mnist_c(key: jax.Array, images: jax.Array) -> jax.Array:
    """Augmentation with MNIST-C's spatial family: each float image `(N, H, W)` gets one of {none, rotate,
    shear, scale, translate} (uniform) at a uniform severity 1…5, with MNIST-C's random signs."""
    count = images.shape[0]
    kind_key, severity_key, sign_key = jax.random.split(key, 3)
    kind = jax.random.randint(kind_key, (count,), 0, len(MNIST_C) + 1)  # 0: left as it is
    magnitude = jnp.asarray(list(MNIST_C.values()), jnp.float32)[:, jax.random.randint(severity_key, (count,), 0, 5)]
    signs = jax.random.choice(sign_key, jnp.array([-1.0, 1.0], jnp.float32), (2, count))
    identity = jnp.broadcast_to(jnp.eye(2, dtype=jnp.float32), (count, 2, 2))
    matrices = jnp.stack([identity, rotation_matrix(jnp.degrees(magnitude[0]) * signs[0]),
                          shear_matrix(jnp.degrees(magnitude[1]) * signs[0]), scale_matrix(magnitude[2]), identity])
    zero = jnp.zeros((count, 2), jnp.float32)
    offsets = jnp.stack([zero, zero, zero, zero, -(signs * magnitude[3:]).T])
    pick = lambda stack: stack[kind, jnp.arange(count)]  # noqa: E731
    return each(warp)(images, pick(matrices), pick(offsets))


# ----- other maps -----

def permute_pixels(images: jax.Array, permutation: jax.Array) -> jax.Array:
    """Pixel j of the result (row-major) is pixel `permutation[j]` of the input: `(..., H, W)` -> same shape.

    permutation: int `(H·W,)`, a permutation of range(H·W) (traced or not; not checked when traced).
    """
    if not isinstance(permutation, jax.core.Tracer):
        p = np.asarray(permutation)
        if p.shape != (images.shape[-2] * images.shape[-1],) or not np.array_equal(np.sort(p), np.arange(p.size)):
            raise ValueError(f"permutation must be a permutation of range({images.shape[-2] * images.shape[-1]}), "
                             f"got shape {p.shape}.")
    flat = images.reshape(*images.shape[:-2], -1)
    return jnp.take(flat, permutation, axis=-1).reshape(images.shape)


def resize(images: jax.Array, factor: int) -> jax.Array:
    """Bilinear upsampling by an integer `factor` (static): float `(..., H, W)` -> `(..., factor·H, factor·W)`.

    Uses `jax.image.resize` ("linear", half-pixel centres, antialiased when
    shrinking); factor 1 returns the images unchanged. Raises ValueError unless factor ≥ 1.
    """
    if not isinstance(factor, (int, np.integer)) or factor < 1:
        raise ValueError(f"resize factor must be an int ≥ 1, got {factor!r}.")
    if factor == 1:
        return images
    height, width = images.shape[-2:]
    return jax.image.resize(images, (*images.shape[:-2], factor * height, factor * width), "linear")
