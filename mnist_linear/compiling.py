"""How our programs compile: JAX's persistent compilation cache on by default, and LLVM at level 1 on
the CPU.

`enable_cache()` runs when `train` or `evaluate` is first imported. The folder is
`$MNIST_LINEAR_COMPILATION_CACHE`, else `~/.cache/mnist_linear/jax` (`data.cache_dir()`);
`MNIST_LINEAR_COMPILATION_CACHE=0` turns the cache off, and a folder already given to JAX
(`jax_compilation_cache_dir`, or `$JAX_COMPILATION_CACHE_DIR`) is kept. A compiled program is reused
only for the same computation, flags, devices and jax version: numbers never change.

`jit` is `jax.jit` for the library's entry points (training, tuning, evaluation). On the CPU it
compiles them with `CPU_OPTIONS`: LLVM's optimisation at level 1 instead of XLA's default 2. Measured
once on this project's CPUs (2 cores, AMD EPYC; not a benchmark): one epoch of the linear model
compiled in 1.1 s instead of 2.1 s and ran as fast; the small CNN's training program compiled in
2.1 s instead of 4.2 s and trained an epoch of 20,000 images in 4.0 s instead of 5.2 s, while its
grid evaluation ran 10 % slower. Tried again once the pooled products had halved the CNN's time: with
the grid evaluations at XLA's default level the spatial experiment's cpu preset took 613 s against
632 s, within this shared machine's run-to-run spread (single programs moved by a third either way), so
every program keeps level 1. Without augmentation the trained parameters are identical bit for
bit (`tests/test_devices.py`); training with random rotations (sin and cos) rounds differently and so
diverges: Fashion-MNIST's small CNN trained with them scored 82.2 ± 1.6 % instead of 82.0 ± 1.7 %
(spatial experiment). `experiment.environment()` records the options each result was compiled with.
Other backends, and a level set in `XLA_FLAGS` when JAX's backend started, are left alone.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import jax

from mnist_linear import data

CACHE_ENV = "MNIST_LINEAR_COMPILATION_CACHE"
CPU_OPTIONS = {"xla_backend_optimization_level": 1}


def enable_cache() -> Path | None:
    """Turns the cache on (every program, however quick to compile, unless the folder is the user's own
    JAX setting, kept as it is); returns its folder, or None when off."""
    setting = os.environ.get(CACHE_ENV, "")
    if setting == "0":
        return None
    if jax.config.jax_compilation_cache_dir and not setting:
        return Path(jax.config.jax_compilation_cache_dir)
    folder = Path(setting) if setting else data.cache_dir() / "jax"
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder


@functools.cache
def _wanted() -> bool:
    """Whether `CPU_OPTIONS` apply: the default backend is the CPU and `XLA_FLAGS` set no level (read once:
    XLA reads its flags once too)."""
    user_level = "xla_backend_optimization_level" in os.environ.get("XLA_FLAGS", "")
    return jax.default_backend() == "cpu" and not user_level


def compiler_options() -> dict:
    """The options `jit` compiles with in this process (for the results' provenance)."""
    return dict(CPU_OPTIONS) if _wanted() else {}


class _Jitted:
    """`jax.jit(fun)` twice, with and without `CPU_OPTIONS`; each call and `lower` take the one for the
    default backend."""

    def __init__(self, fun, jit_kwargs: dict):
        self.on_cpu = jax.jit(fun, compiler_options=CPU_OPTIONS, **jit_kwargs)
        self.elsewhere = jax.jit(fun, **jit_kwargs)
        functools.update_wrapper(self, fun)

    def _pick(self):
        return self.on_cpu if _wanted() else self.elsewhere

    def __call__(self, *args, **kwargs):
        return self._pick()(*args, **kwargs)

    def lower(self, *args, **kwargs):
        return self._pick().lower(*args, **kwargs)

    def __getattr__(self, name):  # the rest of a jitted function's interface (trace, eval_shape, ...)
        return getattr(self._pick(), name)


def jit(fun=None, **jit_kwargs):
    """`jax.jit(fun, **jit_kwargs)` compiled with `CPU_OPTIONS` on the CPU; usable as a decorator with
    arguments, `@compiling.jit(static_argnames=...)`."""
    if fun is None:
        return functools.partial(jit, **jit_kwargs)
    return _Jitted(fun, jit_kwargs)
