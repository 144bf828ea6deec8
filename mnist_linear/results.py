"""Writing results: provenance, atomic files, and parameters that load back."""

from __future__ import annotations

import contextlib
import gzip
import importlib.metadata
import io
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path

import jax
import numpy as np
from flax import traverse_util


def environment() -> dict:
    """Versions, device and git commit, for results.json."""
    import flax
    import optax

    device = jax.devices()[0]
    commit = _git("rev-parse", "HEAD")
    return {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": importlib.metadata.version("jaxlib"),
        "optax": optax.__version__,
        "flax": flax.__version__,
        "numpy": np.__version__,
        "platform": device.platform,
        "device_kind": device.device_kind,
        "device_count": jax.device_count(),
        "processor": _cpu_model() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "git_commit": commit,
        # None when there is no git checkout to ask (a copied tree, say): unknown, not clean.
        "git_dirty": None if commit is None else bool(_git("status", "--porcelain", "--untracked-files=no")),
    }


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        return None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True, cwd=Path(__file__).parent
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


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
    if isinstance(x, (np.generic, jax.Array)) or hasattr(x, "tolist"):
        return np.asarray(x).tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"Cannot write {type(x).__name__} to JSON.")


def save_figure(figure, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=Path(path).suffix.lstrip("."), dpi=150, bbox_inches="tight")


def save_params(path: str | os.PathLike, params) -> None:
    """Saves a pytree of arrays (nested dicts) as .npz, keys joined by '/'."""
    flat = traverse_util.flatten_dict(jax.device_get(params), sep="/")
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in flat.items()})
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def load_params(path: str | os.PathLike) -> dict:
    """The pytree `save_params` wrote, as numpy arrays."""
    with np.load(path) as archive:
        return traverse_util.unflatten_dict({k: archive[k] for k in archive.files}, sep="/")
