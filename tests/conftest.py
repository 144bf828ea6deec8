"""Test setup: real data from ../shared/data unless MNIST_LINEAR_DATA says otherwise."""

import os
from pathlib import Path

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")

_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if not os.environ.get("MNIST_LINEAR_DATA") and _SHARED.is_dir():
    os.environ["MNIST_LINEAR_DATA"] = str(_SHARED)
