"""Invariance metrics of the literature, over predictions on a transform grid, and test-time augmentation.

The metrics take predicted classes from `evaluate.grid_outputs`, `(P, S, N)`
(grid points × seeds × images), and indices or masks into the P points, so they
serve any transform: shifts, rotations, or a grid of both.
"""

from __future__ import annotations

from typing import Sequence

import jax
import numpy as np


def consistency(paired: np.ndarray) -> np.ndarray:
    """Fraction of images predicted alike under two random perturbations (Zhang 2019,
    "Making Convolutional Networks Shift-Invariant Again"): classes `(2, S, N)` -> `(S,)`."""
    paired = np.asarray(paired)
    if paired.ndim != 3 or paired.shape[0] != 2:
        raise ValueError(f"consistency needs predictions (2, S, N) under two draws, got shape {paired.shape}.")
    return (paired[0] == paired[1]).mean(-1)


def top1_change(predictions: np.ndarray, reference: int, neighbours: Sequence[int]) -> np.ndarray:
    """P(top-1 prediction changes) from grid point `reference` to each of `neighbours`, averaged over
    them (Azulay & Weiss 2019, "Why do deep convolutional networks generalize so poorly to small
    image transformations?"): classes `(P, S, N)` -> `(S,)`. Raises ValueError for other shapes, no
    neighbours, or a point outside [0, P)."""
    predictions = np.asarray(predictions)
    if predictions.ndim != 3:
        raise ValueError(f"top1_change takes classes (P, S, N), got shape {predictions.shape}.")
    if not len(neighbours):
        raise ValueError("top1_change needs at least one neighbouring grid point.")
    outside = [int(p) for p in (reference, *neighbours) if not 0 <= p < len(predictions)]
    if outside:
        raise ValueError(f"Grid points {outside} are outside [0, {len(predictions)}): give indices of the grid "
                         "(invariance.index finds a point's).")
    centre = predictions[reference]
    return np.mean([(predictions[o] != centre).mean(-1) for o in neighbours], axis=0)


def grid_accuracy(predictions: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fraction of images classified correctly at every grid point in `mask` (Engstrom et al. 2019,
    "Exploring the Landscape of Spatial Robustness"): classes `(P, S, N)`, labels `(N,)`,
    bool mask `(P,)` -> `(S,)`. Raises ValueError for an empty mask or mismatched shapes."""
    predictions, mask, labels = np.asarray(predictions), np.asarray(mask, bool), np.asarray(labels)
    if predictions.ndim != 3 or labels.shape != predictions.shape[-1:]:
        raise ValueError(f"grid_accuracy takes classes (P, S, N) and labels (N,), got {predictions.shape} and "
                         f"{labels.shape}.")
    if mask.shape != predictions.shape[:1] or not mask.any():
        raise ValueError(f"mask must be a non-empty bool array of shape {predictions.shape[:1]}, "
                         f"got {mask.shape} with {int(mask.sum())} points.")
    return (predictions[mask] == labels).all(0).mean(-1)


def worst_of(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Worst-of-k accuracy (Engstrom et al. 2019): an image counts only if it is classified correctly
    under every one of the K transforms drawn for it: classes `(K, S, N)`, labels `(N,)` -> `(S,)`.
    With K = every point of a grid it is that grid's `grid_accuracy`."""
    predictions = np.asarray(predictions)
    return grid_accuracy(predictions, labels, np.ones(predictions.shape[:1], bool))


def index(grid: Sequence[np.ndarray], point: Sequence) -> int:
    """The index of `point` in a grid given as parameter arrays `(P,)` each, one value per array; ValueError if
    absent or repeated, or if the point does not have one value per array."""
    if len(point) != len(grid):
        raise ValueError(f"Point {tuple(point)} has {len(point)} values for a grid of {len(grid)} arrays.")
    (hits,) = np.nonzero(np.logical_and.reduce([np.asarray(g) == v for g, v in zip(grid, point)]))
    if len(hits) != 1:
        raise ValueError(f"Point {tuple(point)} occurs {len(hits)} times in the grid, not once.")
    return int(hits[0])


def averaged_over(apply, transform, grid: Sequence[np.ndarray]):
    """Test-time augmentation: `apply` with its outputs averaged over the points of a fixed grid.

    apply: `(params, images) -> outputs`; transform: `(images, *point) -> images`;
    grid: concrete parameter arrays `(P,)` each. The grid is part of the model:
    it stays the same whatever perturbation the images already had.
    """
    grid = tuple(np.asarray(g) for g in grid)

    def averaged(params, images):
        each = jax.vmap(lambda *point: apply(params, transform(images, *point)))(*grid)
        return each.mean(0)

    return averaged
