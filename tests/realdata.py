"""Real MNIST, loaded once per test session, and small real batches of it."""

import functools

import numpy as np

from mnist_linear import data


@functools.cache
def mnist() -> data.Dataset:
    return data.load("mnist")


def batch(n: int = 64, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n real training images as float32 in [0, 1] `(n, 28, 28)`, and their labels `(n,)`."""
    split = mnist().train
    images = split.images[start : start + n].astype(np.float32) / 255.0
    return images, split.labels[start : start + n]
