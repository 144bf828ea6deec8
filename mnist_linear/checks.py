"""Contracts of the public entry points, checked on the host before anything compiles.

Shapes and dtypes are checked always (they are static, also under `jit`);
values (pixel range, label range, finite targets) are checked whenever the
array is concrete, that is, not a tracer inside someone else's `jit`. Every
error names the argument, what was found, and what to pass instead.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import numpy as np


def concrete(x) -> np.ndarray | None:
    """`x` as a numpy array, or None when its values are unknown until it runs: a tracer, or a
    `jax.ShapeDtypeStruct` (lowering for shapes alone)."""
    if isinstance(x, (jax.core.Tracer, jax.ShapeDtypeStruct)):
        return None
    return np.asarray(x)


def pixels(x, name: str = "images") -> None:
    """Raises TypeError or ValueError unless `x` holds pixels: uint8 (0–255), or floats already in
    [0, 1] (the convention of `tf.image.convert_image_dtype` and torchvision). The range of float
    pixels is checked whenever `x` is concrete."""
    dtype = np.dtype(x.dtype)
    if dtype != np.uint8 and not np.issubdtype(dtype, np.floating):
        raise TypeError(f"{name} have dtype {dtype}; pass uint8 pixels (0–255) or floats in [0, 1].")
    if np.issubdtype(dtype, np.floating):
        values = concrete(x)
        if values is not None and values.size:
            low, high = float(np.min(values)), float(np.max(values))
            if not (0.0 <= low and high <= 1.0):  # also catches nan
                raise ValueError(f"{name} are floats in [{low:g}, {high:g}], outside [0, 1]. Float images are taken "
                                 "as already scaled to [0, 1]: pass uint8 pixels (0–255) as they are, or divide "
                                 "float pixels by 255.")


def images(x, name: str = "images", image_shape: tuple[int, int] | None = None, batched: bool = True) -> None:
    """Raises TypeError or ValueError unless `x` holds images the models take: `pixels`, of shape
    `(N, H, W)` when `batched`, else `(..., H, W)`, with `(H, W) == image_shape` when given."""
    pixels(x, name)
    shape = tuple(x.shape)
    if batched and len(shape) != 3 or len(shape) < 2:
        want = "(N, H, W)" if batched else "(..., H, W)"
        raise ValueError(f"{name} have shape {shape}; expected {want}, e.g. (N, 28, 28). Flat pixels "
                         "(N, 784) reshape with x.reshape(-1, 28, 28); a single image (28, 28) with x[None].")
    if image_shape is not None and shape[-2:] != tuple(image_shape):
        raise ValueError(f"{name} are {shape[-2]} × {shape[-1]} px; this model takes {image_shape[0]} × "
                         f"{image_shape[1]} px images, shape (..., {image_shape[0]}, {image_shape[1]}).")


def labels(y, num_classes: int, num_examples: int | None = None, name: str = "labels") -> None:
    """Raises TypeError or ValueError unless `y` is int `(N,)` with every value in [0, num_classes)."""
    dtype = np.dtype(y.dtype)
    if not np.issubdtype(dtype, np.integer):
        raise TypeError(f"{name} have dtype {dtype}; pass integer class indices in [0, {num_classes}).")
    if len(y.shape) != 1:
        raise ValueError(f"{name} have shape {tuple(y.shape)}; expected (N,) class indices, not one-hot "
                         "or a column (use y.reshape(-1) or y.argmax(-1)).")
    if num_examples is not None and y.shape[0] != num_examples:
        raise ValueError(f"{y.shape[0]} {name} for {num_examples} images; pass one per image.")
    values = concrete(y)
    if values is not None:
        bad = np.flatnonzero((values < 0) | (values >= num_classes))
        if bad.size:
            shown = ", ".join(f"{values[i]} at index {i}" for i in bad[:5])
            raise ValueError(f"{name} must be in [0, {num_classes}); found {shown}"
                             f"{' …' if bad.size > 5 else ''} ({bad.size} of {values.size} out of range).")


def targets(y, num_targets: int, num_examples: int | None = None, name: str = "targets") -> None:
    """Raises TypeError or ValueError unless `y` is float `(N, num_targets)` and finite."""
    if not np.issubdtype(np.dtype(y.dtype), np.floating):
        raise TypeError(f"{name} have dtype {y.dtype}; pass floats.")
    if tuple(y.shape[1:]) != (num_targets,) or len(y.shape) != 2:
        raise ValueError(f"{name} have shape {tuple(y.shape)}; expected (N, {num_targets}) (one column per "
                         "target, also for a single one: y[:, None]).")
    if num_examples is not None and y.shape[0] != num_examples:
        raise ValueError(f"{y.shape[0]} {name} for {num_examples} images; pass one row per image.")
    values = concrete(y)
    if values is not None and not np.isfinite(values).all():
        raise ValueError(f"{name} hold {int((~np.isfinite(values)).sum())} inf or nan values.")


def integer(value, name: str, least: int | None = 1) -> None:
    """Raises ValueError unless `value` is an int (Python, NumPy, or a 0-d integer array; not a bool),
    ≥ `least` unless that is None."""
    zero_d = (not isinstance(value, jax.core.Tracer) and np.ndim(value) == 0
              and np.issubdtype(np.asarray(value).dtype, np.integer))
    if (not (isinstance(value, (int, np.integer)) or zero_d) or isinstance(value, (bool, np.bool_))
            or least is not None and value < least):
        raise ValueError(f"{name} must be an int{'' if least is None else f' ≥ {least}'}, got {value!r}.")


def keys(k, name: str = "keys") -> int:
    """Raises TypeError unless `k` holds S ≥ 1 PRNG keys: typed `(S,)` (`jax.random.key`) or legacy
    uint32 `(S, 2)` (`jax.random.PRNGKey`); returns S."""
    is_typed = jax.dtypes.issubdtype(k.dtype, jax.dtypes.prng_key)
    typed = is_typed and len(k.shape) == 1
    legacy = not is_typed and np.dtype(k.dtype) == np.uint32 and len(k.shape) == 2 and k.shape[1] == 2
    if not (typed or legacy) or not k.shape[0]:
        single = k.shape == () if is_typed else k.shape == (2,) and np.dtype(k.dtype) == np.uint32
        one = "; for one model pass key[None]" if single else ""
        raise TypeError(f"{name} must hold S ≥ 1 keys, e.g. jax.random.split(jax.random.key(0), S){one}; "
                        f"got dtype {k.dtype}, shape {tuple(k.shape)}.")
    return k.shape[0]


def positive(value, name: str, allow_zero: bool = False) -> None:
    """Raises ValueError unless every concrete value of `value` is > 0 (≥ 0 with `allow_zero`) and finite."""
    values = concrete(value)
    if values is None:
        return
    ok = (values >= 0) if allow_zero else (values > 0)
    if not (np.isfinite(values).all() and ok.all()):
        raise ValueError(f"{name} must be {'≥' if allow_zero else '>'} 0 and finite, got {values.tolist()}.")


class Checked:
    """A jitted function whose arguments are checked on the host first, also when it is only lowered or
    compiled (`compile_and_run`): a wrong input fails before anything compiles."""

    def __init__(self, jitted, check: Callable):
        self.jitted, self.check = jitted, check
        functools.update_wrapper(self, jitted)

    def __call__(self, *args, **kwargs):
        self.check(*args, **kwargs)
        return self.jitted(*args, **kwargs)

    def lower(self, *args, **kwargs):
        self.check(*args, **kwargs)
        return self.jitted.lower(*args, **kwargs)

    def compile(self, *args, **kwargs):
        self.check(*args, **kwargs)
        return self.jitted.compile(*args, **kwargs)


def before(check: Callable):
    """Decorator: `@before(check)` over a jitted function gives a `Checked` one with the jitted
    function's name and docstring. `check` takes the same arguments and raises on a bad one."""
    return lambda jitted: Checked(jitted, check)
