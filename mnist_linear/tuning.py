"""Learning-rate × weight-decay grid search, the whole grid one compiled program.

The hyperparameters are injected into the optimizer state as arrays
(`optax.inject_hyperparams`), so the grid is a `vmap` axis, not a recompile.
Models are chosen by the task's score (accuracy for classification) on the
validation split; the test split is never looked at.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple, Sequence

import jax
import numpy as np

from mnist_linear import checks, compiling, data, evaluate, models, sharding, tasks, train


class GridResult(NamedTuple):
    """The whole learning-rate × weight-decay grid: scores, failures, the chosen point and its edge flag."""

    learning_rates: np.ndarray  # (L,) float64, as given
    weight_decays: np.ndarray  # (D,) float64, as given
    val_score: np.ndarray  # (L, D, S) the task's score on the validation split (accuracy for classification)
    failed: np.ndarray  # (L, D, S) str: why each run failed (`train.failures`), "" where it did not
    best: train.Hyperparams  # highest mean validation score among grid points with no failed seed
    on_edge: bool  # the best point is on an edge of the grid the optimum may lie beyond

    def recipe(self) -> dict:
        """The chosen point, the grid and the edge flag, for results.json and table notes."""
        return {"learning_rate": self.best.learning_rate, "weight_decay": self.best.weight_decay,
                "learning_rates": self.learning_rates.tolist(), "weight_decays": self.weight_decays.tolist(),
                "on_edge": self.on_edge, "tuned_on": "validation"}

    def records(self) -> list[dict]:
        return [
            {"learning_rate": float(lr), "weight_decay": float(wd), "seed": s,
             "val_score": float(self.val_score[i, j, s]), "failed": str(self.failed[i, j, s]) or None}
            for i, lr in enumerate(self.learning_rates)
            for j, wd in enumerate(self.weight_decays)
            for s in range(self.val_score.shape[2])
        ]


@compiling.jit(static_argnames=("model", "task", "config"))
def _train_and_score(keys, hparams, train_images, train_targets, val_images, val_targets, *, model, task, config):
    order_key = train.shared_order_key(keys, config)

    def one(key, hp):
        params, log = train.train(key, train_images, train_targets, hp, model=model, task=task, config=config,
                                  order_key=order_key)
        kept = evaluate.outputs(model.logits, params, val_images, reduce=task.reduce)
        return task.score(kept, val_targets), log

    # Every grid point sees the same seeds (common random numbers), so the
    # differences between grid points come from the hyperparameters alone.
    over_seeds = jax.vmap(one, in_axes=(0, None))
    points = hparams.learning_rate.shape[0]  # the grid's points, split over the devices
    return sharding.cut(sharding.over_models(jax.vmap(lambda hp: over_seeds(keys, hp)), hparams,
                                             config.models_at_once), points)


def grid_search(
    key: jax.Array,
    train_split: data.Split,
    val_split: data.Split,
    *,
    model: models.Model,
    task: tasks.Task = tasks.CLASSIFICATION,
    config: train.TrainConfig,
    learning_rates: Sequence[float],
    weight_decays: Sequence[float],
    seeds: int = 1,
) -> GridResult:
    """Trains `seeds` models at every (learning rate, weight decay) and scores them on `val_split`.

    The best point has the highest mean validation score among points none of
    whose seeds failed (`train.failures`). It is "on the edge" when it is the smallest or largest
    learning rate or the largest weight decay of a grid with more than one value
    there (the smallest decay, 0 say, is a natural bound); a warning says so too.
    Raises TypeError or ValueError for bad inputs (before anything compiles) and
    FloatingPointError when every grid point failed.
    """
    for split, name in ((train_split, "train_split"), (val_split, "val_split")):
        checks.images(split.images, f"{name}.images")
        task.check_targets(task.targets(split), split.images.shape[0])
    checks.positive(np.asarray(learning_rates, np.float64), "learning_rates")
    checks.positive(np.asarray(weight_decays, np.float64), "weight_decays", allow_zero=True)
    if not np.size(learning_rates) or not np.size(weight_decays):
        raise ValueError(f"grid_search needs ≥ 1 learning rate and ≥ 1 weight decay, got "
                         f"{list(learning_rates)} and {list(weight_decays)}.")
    checks.integer(seeds, "seeds")
    lrs, wds = np.asarray(learning_rates, np.float64), np.asarray(weight_decays, np.float64)
    lr_grid, wd_grid = np.meshgrid(lrs, wds, indexing="ij")
    hparams = train.Hyperparams(lr_grid.ravel().astype(np.float32), wd_grid.ravel().astype(np.float32))
    train_targets = task.targets(train_split)
    arrays = sharding.replicated((jax.random.split(key, seeds), hparams, train_split.images, train_targets,
                                  val_split.images, task.targets(val_split)))
    with jax.transfer_guard("disallow"):  # the data crossed above, once; the program moves nothing
        scores, log = jax.block_until_ready(_train_and_score(*arrays, model=model, task=task, config=config))
    shape = (len(lrs), len(wds), seeds)
    val_score = np.asarray(scores, np.float64).reshape(shape)
    failed = train.failures(log, task.chance_loss(np.asarray(train_targets))).reshape(shape)
    score = np.where((failed != "").any(-1), -np.inf, val_score.mean(-1))
    if np.isneginf(score).all():
        raise FloatingPointError(
            f"Every grid point failed (e.g. {next(r for r in failed.flat if r)}); if losses blew up, lower the learning rates "
            "of the grid; if they stayed at chance, raise them or train longer."
        )
    i, j = np.unravel_index(np.argmax(score), score.shape)
    # By value, not by place: a grid may be given in any order.
    on_edge = bool(len(lrs) > 1 and lrs[i] in (lrs.min(), lrs.max()) or len(wds) > 1 and wds[j] == wds.max())
    if on_edge:
        warnings.warn(f"The best grid point (learning rate {lrs[i]:g}, weight decay {wds[j]:g}) is on the edge "
                      f"of the grid {lrs.tolist()} × {wds.tolist()}; the optimum may lie outside: widen the grid.")
    return GridResult(lrs, wds, val_score, failed, train.Hyperparams(float(lrs[i]), float(wds[j])), on_edge)
