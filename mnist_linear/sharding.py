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
sum in another order for another batch size (`tests/test_devices.py`).

One process only: a mesh over several hosts (`jax.distributed`) is not supported yet.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "models"


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
    sizes = {np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in jax.tree.leaves(tree)}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(f"split_models needs one leading model axis on every leaf; got leading sizes "
                         f"{sorted(sizes, key=str)}.")
    (size,) = sizes
    extra = padded(size) - size
    if extra:
        tree = jax.tree.map(lambda leaf: jax.numpy.concatenate([leaf, leaf[np.arange(extra) % size]]), tree)
    return jax.lax.with_sharding_constraint(tree, NamedSharding(mesh(), PartitionSpec(AXIS)))


def cut(tree, count: int, axis: int = 0):
    """The first `count` models along `axis` of every leaf: what `split_models` padded, without the padding."""
    return jax.tree.map(lambda leaf: jax.lax.slice_in_dim(leaf, 0, count, axis=axis), tree)


def replicated(tree):
    """Every leaf whole on every device (outside a program: an explicit transfer)."""
    return jax.device_put(tree, NamedSharding(mesh(), PartitionSpec()))


def layout(tree) -> list[tuple]:
    """How each leaf of `tree` lies over the devices, in leaf order: its `PartitionSpec` as a tuple (`()`: whole
    on every device), so that `placed` can put a copy pulled to the host back the same way."""
    return [tuple(leaf.sharding.spec) if isinstance(getattr(leaf, "sharding", None), NamedSharding) else ()
            for leaf in jax.tree.leaves(tree)]


def placed(tree, layout: list[tuple]):
    """Host arrays `tree` put on the devices as `layout` (from `layout`) says: an explicit transfer."""
    leaves, treedef = jax.tree.flatten(tree)
    if len(leaves) != len(layout):
        raise ValueError(f"placed: the layout has {len(layout)} leaves, the tree {len(leaves)}.")
    return treedef.unflatten([jax.device_put(leaf, NamedSharding(mesh(), PartitionSpec(*spec)))
                              for leaf, spec in zip(leaves, layout)])
