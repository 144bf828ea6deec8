"""The results schema: atomic files, JSON records, and the one way to query them. Imports no jax.

An experiment's results file holds `experiment`, `config`, `environment`,
`dataset`, `linear_recipe` (when the linear model was tuned), its own summary
fields, and `records`: a list of flat dicts, one per model, seed and condition,
each with `model` (a name of `models.NAMES`), `seed` and `failed` (why the run
failed, `train.failures`, or null). Tables and figures are made from that file
alone, through `select` and `per_seed`, which leave failed runs out.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yields a temporary path beside `path`; moves it into place only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Writes `text` to `path` atomically: readers see the old file or the whole new one."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj) -> None:
    """JSON, gzipped when `path` ends in .gz (for sweeps with many thousands of records)."""
    text = json.dumps(obj, indent=2, default=_to_builtin) + "\n"
    if Path(path).suffix != ".gz":
        return write_text(path, text)
    with atomic_path(path) as tmp:
        tmp.write_bytes(gzip.compress(text.encode(), mtime=0))  # mtime=0: the same results, the same bytes


def read_json(path: str | os.PathLike):
    """What `write_json` wrote."""
    raw = Path(path).read_bytes()
    return json.loads(gzip.decompress(raw) if Path(path).suffix == ".gz" else raw)


def _to_builtin(x):
    if isinstance(x, np.generic) or hasattr(x, "tolist"):  # numpy and jax arrays
        return np.asarray(x).tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"Cannot write {type(x).__name__} to JSON.")


def save_figure(figure, path: str | os.PathLike) -> None:
    """Saves a matplotlib figure atomically, in the format of `path`'s suffix, at 150 dpi."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=Path(path).suffix.lstrip("."), dpi=150, bbox_inches="tight")


def save_params(path: str | os.PathLike, params) -> None:
    """Saves a pytree of arrays (nested dicts) as .npz, keys joined by '/'."""
    flat = _flatten(params)
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in flat.items()})
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def load_params(path: str | os.PathLike) -> dict:
    """The pytree `save_params` wrote, as numpy arrays."""
    tree: dict = {}
    with np.load(path) as archive:
        for name in archive.files:
            *parents, leaf = name.split("/")
            node = tree
            for key in parents:
                node = node.setdefault(key, {})
            node[leaf] = archive[name]
    return tree


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}/"))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def seed_records(failed, **per_seed) -> list[dict]:
    """One record per seed: the `per_seed` values (scalars, or arrays `(S,)` indexed by seed) and
    `failed`, each seed's reason from `train.failures` (str `(S,)`, "" for a run that did not fail,
    recorded as null)."""
    failed = np.asarray(failed, str)
    return [{"seed": s, **{k: (np.asarray(v)[s].item() if np.ndim(v) else v) for k, v in per_seed.items()},
             "failed": str(failed[s]) or None} for s in range(len(failed))]


def failed(records: list[dict]) -> list[dict]:
    """The records of failed runs."""
    return [r for r in records if r.get("failed")]


def all_failed(records: list[dict], group: tuple[str, ...] = ("model",)) -> list[tuple]:
    """The values of the `group` fields (a model and its variant, say; None where a record lacks one)
    every one of whose records failed."""
    groups: dict = {}
    for r in records:
        groups.setdefault(tuple(r.get(k) for k in group), []).append(bool(r.get("failed")))
    return [value for value, flags in groups.items() if all(flags)]


def distinct(records: list[dict], keys: tuple[str, ...]) -> list[dict]:
    """Each combination of the `keys` fields' values that the records hold, as a dict, in the order they first
    list it (the variants of an experiment, say)."""
    return [dict(v) for v in dict.fromkeys(tuple((k, r[k]) for k in keys) for r in records)]


def select(records: list[dict], where: Callable[[dict], bool] | None = None, **equal) -> list[dict]:
    """The records whose fields equal every `equal` value and for which `where(record)` holds.

    Raises KeyError naming the field when a record lacks one of `equal`'s fields.
    """
    def match(r):
        for key, value in equal.items():
            if key not in r:
                raise KeyError(f"A record has no field {key!r}; its fields are {sorted(r)}.")
            if r[key] != value:
                return False
        return where is None or where(r)

    return [r for r in records if match(r)]


def per_seed(records: list[dict], key: str, where: Callable[[dict], bool] | None = None, **equal) -> np.ndarray:
    """`key` per seed, averaged over the matching records of that seed, seeds in order, failed
    runs left out: float64 `(S',)` (empty when none is left)."""
    by_seed: dict[int, list] = {}
    for r in select(records, where, **equal):
        if not r.get("failed"):
            by_seed.setdefault(r["seed"], []).append(r[key])
    return np.array([np.mean(v) for _, v in sorted(by_seed.items())], np.float64)
