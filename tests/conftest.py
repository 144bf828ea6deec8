"""Test setup: real data from ../shared/data unless MNIST_LINEAR_DATA says otherwise.

`make test` runs the suite twice: with JAX_NUMPY_RANK_PROMOTION=raise and with
JAX's default ("allow"); jax reads the variable itself.
"""

import os
from pathlib import Path

import pytest


_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if not os.environ.get("MNIST_LINEAR_DATA") and _SHARED.is_dir():
    os.environ["MNIST_LINEAR_DATA"] = str(_SHARED)
if not (Path(os.environ.get("MNIST_LINEAR_DATA", "")) / "mnist").is_dir():
    pytest.exit("The tests read the real IDX files: set MNIST_LINEAR_DATA to a folder holding mnist/ and "
                f"fashion-mnist/ (default {_SHARED}).", returncode=2)
