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
every program keeps level 1. XLA's older loop emitters (`xla_cpu_use_fusion_emitters=False`) compile
faster but run the warps slower (2 cores, AMD EPYC, fresh processes, 2–3 runs each): the linear model's
one-epoch training and scoring compiled in 0.75 s instead of 1.1 s and the small CNN's in 2.4 s instead
of 4.1 s, but the linear model's rotation × translation grid ran at 0.22 M instead of 1.5 M
evaluations/s, training with random rotations 1.2–1.5× slower and the MLP's epoch 1.5× slower; so XLA's
default emitters stay. At level 1 without augmentation the trained parameters are level 2's bit for bit
(`tests/test_devices.py`); training with random rotations (sin and cos) rounds differently and so
diverges: Fashion-MNIST's small CNN trained with them scored 82.2 ± 1.6 % instead of 82.0 ± 1.7 %
(spatial experiment). `experiment.environment()` records the options each result was compiled with.
Other backends, and a level set in `XLA_FLAGS` when JAX's backend started, are left alone.

No program donates its inputs: every input a program takes (the images, targets, keys and the parameters
it scores) lives on for the caller's next phase, and the parameters it trains are made inside it. At the
usual shapes no output could even take an input's buffer (`tests/test_train.py` lowers each program with
every input donated and finds no alias); where one could (raw outputs of 784 images have the shape of the
linear weights), donating would still lose the caller its arrays.

The persistent cache still traces and lowers a program to find it (0.2 s for one epoch of the linear
model, half of a warm start). So `jit`'s functions also keep their compiled executables (`compile`,
used by every call) in `executables/` beside JAX's cache, one file per key: the sha256 of the
function, its static arguments, the abstract values and shardings of the others, every `jax.config`
value, `XLA_FLAGS`, the compile options, the devices and their backend's version, the CPU's model and
instruction sets, the versions of jax, jaxlib, optax, flax and chex, and the source of every module of
this package as imported. A later process loads the executable onto the devices it was compiled for
(one of eight, or all eight) without tracing. Under rank promotion "allow" or "warn" it also takes one
stored under "raise": promotion there only adds errors, so a program that traced under "raise" traces
to the same program under the others (not the other way round). Only what the key can name qualifies: a function of this
package at module level, static arguments that are plain values, tuples, `functools.partial`s, or
this package's dataclasses, named tuples and module-level functions (named by module and qualified
name, their source in the key). A lambda, a closure, a method or the
user's own function sends the call down `jax.jit`'s usual path, as does a traced argument, several
processes, or the cache turned off. Only a program XLA has just compiled is stored (one that JAX's own
cache gave, or kept in memory from such a load, does not run once serialised again), so a program
already in JAX's cache is stored once that entry is gone; nothing is stored once the package's files
have changed since it was imported. Old entries are not pruned (nor are JAX's). Only our own files are
loaded: deserialising an executable can run code, so the folder must be the user's own.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import inspect
import os
import pickle
import platform
import sys
import tempfile
from pathlib import Path

import jax
from jax.experimental import serialize_executable

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
    default backend. `compile` gives the executable for given arguments, from the store when it holds it;
    a call runs that executable."""

    def __init__(self, fun, jit_kwargs: dict):
        self.on_cpu = jax.jit(fun, compiler_options=CPU_OPTIONS, **jit_kwargs)
        self.elsewhere = jax.jit(fun, **jit_kwargs)
        self._static = frozenset(jit_kwargs.get("static_argnames", ()))
        self._loaded: dict[str, jax.stages.Compiled] = {}  # key -> executable, in this process
        functools.update_wrapper(self, fun)

    def _pick(self):
        return self.on_cpu if _wanted() else self.elsewhere

    def _keys(self, args, kwargs) -> list[str]:
        """The keys to look for, this process's own first; none when nothing can be stored."""
        if _store() is None:
            return []
        named = (self.__wrapped__, args, {k: v for k, v in kwargs.items() if k not in self._static},
                 {k: v for k, v in kwargs.items() if k in self._static})
        keys = [_key(*named), *([_key(*named, rank_promotion="raise")] if _rank_promotion() != "raise" else [])]
        return [] if None in keys else keys

    def compile(self, *args, **kwargs) -> jax.stages.Compiled:
        """The compiled program for these arguments (what `lower(...).compile()` gives): read from the
        executable store when it holds this key, else compiled and written there. Called with the
        arguments that are not static."""
        keys = self._keys(args, kwargs)
        return self._stored(keys, args, kwargs) if keys else self.lower(*args, **kwargs).compile()

    def _stored(self, keys: list[str], args, kwargs) -> jax.stages.Compiled:
        key = keys[0]
        if self._loaded.get(key) is None:
            self._loaded[key] = next(filter(None, map(_read, keys)), None)
        if self._loaded[key] is None:
            before = dict(_compiles)
            compiled = self.lower(*args, **kwargs).compile()
            # An executable that JAX's cache deserialised serialises into one that cannot run (jaxlib 0.10.2:
            # "Function wrapped_iota not found"); so does one JAX kept in memory from such a load. Only a
            # program XLA compiled just now (one request to JAX's cache, no hit) is stored.
            fresh = _compiles["requests"] == before["requests"] + 1 and _compiles["hits"] == before["hits"]
            self._loaded[key] = _write(key, compiled) if fresh else compiled
        return self._loaded[key]

    def __call__(self, *args, **kwargs):
        keys = self._keys(args, kwargs)
        if not keys:
            return self._pick()(*args, **kwargs)
        return self._stored(keys, args, kwargs)(*args, **{k: v for k, v in kwargs.items() if k not in self._static})

    def lower(self, *args, **kwargs):
        return self._pick().lower(*args, **kwargs)

    def __getattr__(self, name):  # the rest of a jitted function's interface (trace, eval_shape, ...)
        return getattr(self._pick(), name)


# ----- the executable store -----

_compiles = {"requests": 0, "hits": 0}  # compiles that asked JAX's persistent cache, and those it answered
_EVENTS = {"/jax/compilation_cache/compile_requests_use_cache": "requests", "/jax/compilation_cache/cache_hits": "hits"}


def _count(event: str, **_) -> None:
    if event in _EVENTS:
        _compiles[_EVENTS[event]] += 1


jax.monitoring.register_event_listener(_count)


def _store() -> Path | None:
    """`executables/` in JAX's persistent cache folder, when that is on and local and this process is alone."""
    folder = jax.config.jax_compilation_cache_dir
    if not folder or "://" in str(folder) or jax.process_count() > 1:
        return None
    return Path(folder) / "executables"


def _token(value) -> str | None:
    """A stable text naming a static argument, or None when it has none."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return f"{type(value).__name__}:{value!r}"
    ours = _ours(type(value).__module__)  # a type's methods may act on the program: only ours, in the source hash
    if isinstance(value, functools.partial):
        fields = {"func": value.func, "args": value.args, "keywords": tuple(sorted(value.keywords.items()))}
    elif dataclasses.is_dataclass(value) and not isinstance(value, type) and ours:
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    elif isinstance(value, tuple) and hasattr(value, "_fields") and ours:
        fields = dict(zip(value._fields, value))
    elif type(value) in (tuple, list):
        fields = dict(enumerate(value))
    elif inspect.isfunction(value):
        return _function_token(value)
    else:
        return None
    tokens = {name: _token(v) for name, v in fields.items()}
    if None in tokens.values():
        return None
    return f"{type(value).__module__}.{type(value).__qualname__}({', '.join(f'{k}={v}' for k, v in tokens.items())})"


def _function_token(fun) -> str | None:
    """`module.qualname` of a function this package defines at module level (its source is in the key)."""
    module, name = getattr(fun, "__module__", None) or "", getattr(fun, "__qualname__", "")
    if not inspect.isfunction(fun) or not _ours(module) or module not in sys.modules:
        return None
    found = sys.modules[module]
    for part in name.split("."):
        found = getattr(found, part, None)
    while found is not fun and hasattr(found, "__wrapped__"):  # a decorated function (`jit`, `checks.before`)
        found = found.__wrapped__
    return f"{module}.{name}" if found is fun else None


def _ours(module: str) -> bool:
    return module.split(".")[0] == __name__.split(".")[0]


def _signature(leaf) -> str | None:
    """The abstract value and placement of a dynamic argument; None for a tracer."""
    if isinstance(leaf, jax.core.Tracer):
        return None
    sharding = getattr(leaf, "sharding", None) if isinstance(leaf, jax.Array) else None
    return f"{jax.typeof(leaf)} {sharding!r} {getattr(leaf, 'committed', None)}"


def _source() -> str:
    """The sha256 of every module of this package as it is on disk now."""
    return hashlib.sha256(b"".join(path.read_bytes() for path in sorted(Path(__file__).parent.glob("*.py")))).hexdigest()


_SOURCE = _source()  # as imported (the package's modules load together); `_write` checks it has not changed since


@functools.cache
def _environment() -> str:
    """What else decides the executable: this package's source, versions, the devices and their backend,
    the CPU's model and instruction sets (a cache folder may be shared between machines)."""
    versions = {name: importlib.metadata.version(name) for name in ("jax", "jaxlib", "optax", "flax", "chex")}
    devices = [(d.platform, d.device_kind, d.id) for d in jax.devices()]
    backend = jax.devices()[0].client
    try:
        cpu = sorted({line for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith(("model name", "flags"))})
    except OSError:
        cpu = [platform.processor()]
    return repr((_SOURCE, versions, devices, backend.platform_version, platform.machine(), cpu,
                 os.environ.get("XLA_FLAGS", "")))


def _rank_promotion() -> str:
    return jax.config.jax_numpy_rank_promotion


def _key(fun, args, dynamic: dict, static: dict, rank_promotion: str | None = None) -> str | None:
    """The executable's file name, or None when the function or some argument cannot be named (then
    nothing is stored). `rank_promotion`: the key under that `jax_numpy_rank_promotion` instead of this
    process's."""
    statics = {name: _token(value) for name, value in sorted(static.items())}
    leaves, tree = jax.tree.flatten((args, dynamic))
    signatures = [_signature(leaf) for leaf in leaves]
    if _function_token(fun) is None or None in statics.values() or None in signatures:
        return None
    values = {**jax.config.values, **({"jax_numpy_rank_promotion": rank_promotion} if rank_promotion else {})}
    config = sorted((name, repr(value)) for name, value in values.items())
    text = repr((_function_token(fun), statics, str(tree), signatures, config, compiler_options(), _environment()))
    return hashlib.sha256(text.encode()).hexdigest()


def _read(key: str) -> jax.stages.Compiled | None:
    """The stored executable, or None when absent or unreadable (a torn or foreign file is compiled again)."""
    try:
        device_ids, serialized = pickle.loads((_store() / key).read_bytes())
        # Its own devices, not all of them: by default a program for one device, loaded where there are
        # several, expects an argument on each (jaxlib 0.10.2: "Attempted to execute with 8 argument lists").
        devices = {d.id: d for d in jax.local_devices()}
        return serialize_executable.deserialize_and_load(*serialized,
                                                         execution_devices=[devices[i] for i in device_ids])
    except Exception:  # noqa: BLE001  -- missing, truncated, or from another build: compile it again
        return None


def _write(key: str, compiled: jax.stages.Compiled) -> jax.stages.Compiled:
    """Stores `compiled` under `key` (a temporary file renamed into place: never half a file); returns it.
    A program that cannot be serialised or written still runs."""
    folder, temporary = _store(), None
    if _source() != _SOURCE:  # edited since it was imported: this program may be the old code's
        return compiled
    try:
        device_ids = [d.id for d in compiled.runtime_executable().local_devices()]
        payload = pickle.dumps((device_ids, serialize_executable.serialize(compiled)))
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".", delete=False) as f:
            temporary = Path(f.name)
            f.write(payload)
        os.replace(temporary, folder / key)
    except Exception:  # noqa: BLE001  -- not stored, nothing else lost
        if temporary is not None:
            temporary.unlink(missing_ok=True)
    return compiled


def jit(fun=None, **jit_kwargs):
    """`jax.jit(fun, **jit_kwargs)` compiled with `CPU_OPTIONS` on the CPU; usable as a decorator with
    arguments, `@compiling.jit(static_argnames=...)`."""
    if fun is None:
        return functools.partial(jit, **jit_kwargs)
    return _Jitted(fun, jit_kwargs)
