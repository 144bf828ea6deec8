"""Sweeps across devices: the model axis split over every device, the data replicated.

A sweep's models (seeds, hyperparameter grid points) sit on a leading axis that the
jitted programs `vmap` over. Inside each program, `split_models` pads that axis to a
multiple of the device count (repeating the first models) and constrains it to
`NamedSharding(mesh(), P("models"))`; `cut` drops the padding from the results. `jit`
then partitions the vmapped program by itself (GSPMD): each device trains and scores
its own models on its own copy of the data, and only results cross devices. Outside
the programs, `replicated` places data whole on every device, once. On one device all
of this is the identity. With 8 devices the results equal one device's to float32
rounding, not bit for bit: each device runs a smaller vmap, and XLA's CPU kernels may
sum in another order for another batch size. `over_models` with `models_at_once=g` (in
`train.TrainConfig`, `evaluate.seed_outputs` and `grid_outputs`) runs each device's models
g at a time instead, in stacks whose shapes do not depend on the device count: the same
numbers bit for bit on 1 or 8 devices (`tests/test_devices.py`).

Several processes (hosts, or processes on one machine) share one mesh through `jax.distributed`:
`join_processes` joins them when the environment names a coordinator (`COORDINATOR_ENV`,
`PROCESSES_ENV`, `PROCESS_ID_ENV`; `auto` lets JAX find a SLURM, Open MPI or Kubernetes job). Every
process runs the same program on the same data: `replicated` makes one global array of each
process's copy, and `cut` gathers the results whole onto every device, so each process reads them
as it would alone (`tests/test_devices.py` runs an experiment as two processes).
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "models"
COORDINATOR_ENV = "MNIST_LINEAR_COORDINATOR"  # host:port of process 0, or "auto"
PROCESSES_ENV = "MNIST_LINEAR_PROCESSES"  # how many processes
PROCESS_ID_ENV = "MNIST_LINEAR_PROCESS_ID"  # this one's index, 0 to PROCESSES - 1


def join_processes() -> int:
    """Joins the run's other processes (`jax.distributed.initialize`) when `COORDINATOR_ENV` is set, once,
    before anything touches a device; returns this process's index (0 alone). Raises ValueError when
    the coordinator is named without the process count and index."""
    coordinator = os.environ.get(COORDINATOR_ENV)
    if coordinator and not jax.distributed.is_initialized():
        if coordinator == "auto":
            jax.distributed.initialize()
        else:
            try:
                count, index = int(os.environ[PROCESSES_ENV]), int(os.environ[PROCESS_ID_ENV])
            except (KeyError, ValueError) as e:
                raise ValueError(f"{COORDINATOR_ENV}={coordinator} needs {PROCESSES_ENV} (how many processes) and "
                                 f"{PROCESS_ID_ENV} (this one's index from 0) as integers: {e}.") from None
            jax.distributed.initialize(coordinator, num_processes=count, process_id=index)
    return jax.process_index()


def mesh() -> Mesh:
    """One axis, `AXIS`, over every device `jax.devices()` lists."""
    return Mesh(np.array(jax.devices()), (AXIS,))


def padded(count: int) -> int:
    """`count` models rounded up to a multiple of the device count."""
    devices = jax.device_count()
    return -(-count // devices) * devices


def split_models(tree):
    """Inside a jitted program: every leaf's leading axis (the S models) padded to `padded(S)` by repeating
    its first models, and split over the devices. Raises ValueError when the leaves disagree on S."""
    tree = _pad(tree, padded(_num_models(tree)))
    return jax.lax.with_sharding_constraint(tree, NamedSharding(mesh(), PartitionSpec(AXIS)))


def over_models(fn, tree, models_at_once: int = 0, axis: int = 0):
    """Inside a jitted program: `fn` of the S entries of a sweep's model axis (seeds; grid points when
    tuning), stacked on the leading axis of every leaf of `tree`, split over the devices. `fn(stack)`
    returns leaves with the stack's axis at `axis` ≥ 0, and so does `over_models`, that axis padded
    (`cut` it to S).

    models_at_once=0: `fn(split_models(tree))`, every device's entries in one stack (the fastest with a
    shared order). XLA's CPU kernels may sum in another order for another stack size, so results on
    D devices equal one device's to float32 rounding, not bit for bit. models_at_once=g: each device
    takes its entries g at a time (a `lax.map` of `fn` over stacks of g), the axis padded to a multiple
    of g × D. Every stack then has the same shapes on any number of devices, so the results are the same
    bit for bit (`tests/test_devices.py`), at the cost of the padding and of narrower products (a linear
    sweep's wide GEMM is g models wide; `benchmarks/README.md` measures both ways). Raises ValueError
    when models_at_once is not an int ≥ 0, when the leaves disagree on S, or when an output leaf has no
    axis of g at `axis`."""
    if not isinstance(models_at_once, (int, np.integer)) or isinstance(models_at_once, bool) or models_at_once < 0:
        raise ValueError(f"models_at_once must be an int ≥ 0, got {models_at_once!r}.")
    if not models_at_once:
        return fn(split_models(tree))
    devices, g = jax.device_count(), models_at_once
    per_device = -(-_num_models(tree) // (devices * g))  # stacks of g on each device
    tree = jax.tree.map(lambda leaf: leaf.reshape(devices, per_device, g, *leaf.shape[1:]),
                        _pad(tree, devices * per_device * g))
    tree = jax.lax.with_sharding_constraint(tree, NamedSharding(mesh(), PartitionSpec(AXIS)))
    out = jax.vmap(lambda stacks: jax.lax.map(fn, stacks))(tree)  # leaves (D, per_device, …), g at axis + 2

    def join(leaf):  # (D, per_device, …, g, …) -> (…, D · per_device · g, …), device-major
        if not 0 <= axis < leaf.ndim - 2 or leaf.shape[axis + 2] != g:
            raise ValueError(f"over_models: fn's outputs must hold the stack of {g} at axis {axis} ≥ 0; got an "
                             f"output of shape {leaf.shape[2:]}.")
        leaf = jax.numpy.moveaxis(leaf, (0, 1), (axis, axis + 1))
        return leaf.reshape(*leaf.shape[:axis], -1, *leaf.shape[axis + 3:])

    return jax.tree.map(join, out)


def _num_models(tree) -> int:
    sizes = {np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in jax.tree.leaves(tree)}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(f"A stack of models needs one leading model axis on every leaf; got leading sizes "
                         f"{sorted(sizes, key=str)}.")
    return sizes.pop()


def _pad(tree, count: int):
    """Every leaf's leading axis (S) padded to `count` by repeating its first models."""
    size = _num_models(tree)
    extra = count - size
    if extra:
        tree = jax.tree.map(lambda leaf: jax.numpy.concatenate([leaf, leaf[np.arange(extra) % size]]), tree)
    return tree


def cut(tree, count: int, axis: int = 0):
    """Inside a jitted program: the first `count` models along `axis` of every leaf (what `split_models`
    padded, without the padding), gathered whole onto every device, so that every process can read them."""
    return whole(jax.tree.map(lambda leaf: jax.lax.slice_in_dim(leaf, 0, count, axis=axis), tree))


def whole(tree):
    """Inside a jitted program: every leaf gathered whole onto every device (what every process can read)."""
    return jax.lax.with_sharding_constraint(tree, NamedSharding(mesh(), PartitionSpec()))


def replicated(tree):
    """Every leaf whole on every device (outside a program: an explicit transfer). With several processes,
    each gives its own copy of every leaf, which must be the same in all (the same data, the same keys)."""
    everywhere = NamedSharding(mesh(), PartitionSpec())
    if jax.process_count() == 1:
        return jax.device_put(tree, everywhere)
    return jax.tree.map(lambda leaf: _global(leaf, everywhere), tree)


def _global(leaf, everywhere: NamedSharding):
    if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(_global(jax.random.key_data(leaf), everywhere), impl=jax.random.key_impl(leaf))
    return jax.make_array_from_process_local_data(everywhere, np.asarray(leaf))
