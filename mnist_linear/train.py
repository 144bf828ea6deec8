"""The one training loop: a jitted optax step, epochs as `lax.scan`, seeds as `vmap`.

The whole training set lives on the device as uint8; each step gathers its
batch by index and converts it to float, so there is no host transfer per step
and no Python loop per step or per epoch. Every model is a pair of pure
functions (`models.Model`) and every loss a function `(outputs, targets) -> scalar`,
so the same loop trains the classifiers and the regression head.

Input maps enter in two ways: `transform(x, *transform_params)` is a fixed map
of every batch (a pixel permutation, an upsampling, a fixed shift; its
parameters may be traced, so `train_grid` trains a whole grid of them at once),
and `augment(key, x)` a random one (random shifts). Augmentation comes first,
then the transform: the model sees `transform(augment(key, x))`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mnist_linear import checks, compiling, data, sharding, tasks
from mnist_linear.models import Model, Params

LossFn = Callable[[jax.Array, jax.Array], jax.Array]
compiling.enable_cache()
# (key, float images (B, H, W)) -> float images (B, H, W): random augmentation per batch.
Augment = Callable[[jax.Array, jax.Array], jax.Array]
# (float images (B, H, W), *params) -> float images (B, H', W'): see `transforms`.
Transform = Callable[..., jax.Array]


class Hyperparams(NamedTuple):
    """Hyperparameters that are arrays, so a grid of them is one `vmap`, not a recompile."""

    learning_rate: jax.Array | float
    weight_decay: jax.Array | float


COMPUTE_DTYPES = ("float32", "bfloat16")


def in_dtype(logits_fn, dtype: str):
    """`logits_fn` computed in `dtype`: parameters and images cast to it, its outputs (in `dtype`'s
    precision) cast back to float32 for the loss. Gradients flow back through the casts to the float32
    parameters."""
    if dtype not in COMPUTE_DTYPES:
        raise ValueError(f"Unknown compute dtype {dtype!r}; choose one of {COMPUTE_DTYPES}.")
    if dtype == "float32":
        return logits_fn
    cast = lambda tree: jax.tree.map(lambda a: a.astype(dtype), tree)  # noqa: E731
    return lambda params, images: logits_fn(cast(params), cast(images)).astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How the loop runs; checked on creation (ValueError names the field)."""

    epochs: int = 10
    batch_size: int = 100
    momentum: float = 0.9  # SGD momentum in [0, 1); 0 is plain SGD
    schedule: str = "cosine"  # "cosine" decays the learning rate to 0; "constant" keeps it
    # Every model of a sweep visits the examples in the first model's order (its initialisation and its
    # augmentation stay its own): the batch is gathered once per step for all of them, and S linear models'
    # products fuse into one wide GEMM. Off by default: seed variance then includes the data order.
    shared_order: bool = False
    # The forward and backward products in this dtype ("bfloat16": for accelerators); the parameters, the
    # optimizer state and the loss stay float32.
    compute_dtype: str = "float32"
    # 0: each device trains all of its models in one vmap (the fastest with a shared order; see
    # `sharding.over_models` for independent ones). g ≥ 1: g at a time (seeds; in tuning, grid points): the
    # same numbers bit for bit on any number of devices.
    models_at_once: int = 0

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            checks.integer(getattr(self, name), name)
        checks.integer(self.models_at_once, "models_at_once", least=0)
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}.")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"Unknown schedule {self.schedule!r}; choose 'cosine' or 'constant'.")
        if not isinstance(self.shared_order, bool):
            raise ValueError(f"shared_order must be True or False, got {self.shared_order!r}.")
        if self.compute_dtype not in COMPUTE_DTYPES:
            raise ValueError(f"Unknown compute_dtype {self.compute_dtype!r}; choose one of {COMPUTE_DTYPES}.")


def make_optimizer(hparams: Hyperparams, momentum: float, schedule: optax.Schedule | None = None):
    """SGD with momentum and L2 weight decay; `hparams` are injected as state."""

    @optax.inject_hyperparams
    def sgd(learning_rate, weight_decay):
        return optax.chain(
            optax.add_decayed_weights(weight_decay),
            optax.sgd(learning_rate, momentum=momentum or None),
        )

    optimizer = sgd(learning_rate=hparams.learning_rate, weight_decay=hparams.weight_decay)
    if schedule is None:
        return optimizer
    return optax.chain(optimizer, optax.scale_by_schedule(schedule))


def make_update_step(logits_fn, loss_fn: LossFn, optimizer: optax.GradientTransformation):
    """A pure, jitted `(params, opt_state, images, targets) -> (params, opt_state, metrics)`."""

    def loss(params, images, targets):
        return loss_fn(logits_fn(params, images), targets)

    @jax.jit
    def update_step(params, opt_state, images, targets):
        value, grads = jax.value_and_grad(loss)(params, images, targets)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return params, opt_state, {"loss": value}

    return update_step


class TrainLog(NamedTuple):
    """What training reports per run (leading seed/grid axes under vmap); see `failures`."""

    loss: jax.Array  # (epochs,) mean training loss of each epoch
    non_finite: jax.Array  # () bool: a loss or parameter became inf or nan


CHANCE_MARGIN = 0.99  # a final loss above 99% of the chance loss is no better than chance


def failures(log: TrainLog, chance_loss: float) -> np.ndarray:
    """Why each run failed, "" where it did not: str array of the log's leading shape (seeds, …).

    A run fails when its loss or parameters became inf or nan; when its final
    epoch's mean training loss is no better than `chance_loss` (a task's
    `chance_loss`: for classification the labels' entropy, at most log C), that is,
    above 99% of it (a model that learned only the class frequencies sits at
    chance up to float noise; one that learned from the images is far below), however
    it got there (a run that exploded to 1e11 without reaching inf fails here); or,
    trained for two or more epochs, when its final loss is no better than its first epoch's.
    Failed runs are reported per seed and left out of every mean.
    """
    loss = np.asarray(log.loss, np.float64)
    non_finite = np.asarray(log.non_finite)
    first, final = loss[..., 0], loss[..., -1]
    reasons = np.full(non_finite.shape, "", dtype=object)
    stuck = (final >= first) & (loss.shape[-1] > 1)
    reasons[stuck] = [f"final training loss {f:.3g} no better than its first epoch's {a:.3g}"
                      for a, f in zip(first[stuck], final[stuck])]
    chance = final > CHANCE_MARGIN * chance_loss
    reasons[chance] = [f"final training loss {f:.3g} no better than chance ({chance_loss:.3g})" for f in final[chance]]
    reasons[non_finite] = "loss or parameters became inf or nan"
    return reasons.astype(str)


def train(
    key: jax.Array,
    images: jax.Array,
    targets: jax.Array,
    hparams: Hyperparams,
    *,
    model: Model,
    task: tasks.Task,
    config: TrainConfig,
    augment: Augment | None = None,
    transform: Transform | None = None,
    transform_params: tuple = (),
    order_key: jax.Array | None = None,
) -> tuple[Params, TrainLog]:
    """Trains one model from `key` on `task`. Pure: wrap it in `jit` and `vmap` as needed
    (`train_seeds` and `train_grid` do, after checking their inputs).

    images: `(N, H, W)` uint8 pixels or floats in [0, 1] (see `data.to_float`);
    targets: what `task.targets` makes, `(N,)` labels or `(N, T)` regression targets;
    hparams: learning rate > 0 and weight decay ≥ 0 (float scalars, traced or not).
    Each batch is `transform(augment(key, x), *transform_params)` (either may be None).
    Each epoch visits a fresh permutation in `N // batch_size` full batches; the
    few examples left over differ from epoch to epoch. The permutations come from
    `order_key` when given (`shared_order`: the same for every model of a sweep),
    else from `key`; a model given its own key's `order_key` (`data_order_key`)
    trains exactly as with None.
    Raises ValueError when batch_size is larger than N.
    """
    num_examples = images.shape[0]
    steps = num_examples // config.batch_size
    if steps == 0:
        raise ValueError(f"batch_size={config.batch_size} is larger than the {num_examples} training examples.")
    schedule = optax.cosine_decay_schedule(1.0, steps * config.epochs) if config.schedule == "cosine" else None
    optimizer = make_optimizer(hparams, config.momentum, schedule)
    update_step = make_update_step(in_dtype(model.logits, config.compute_dtype), task.loss, optimizer)

    init_key, data_key = jax.random.split(key)
    order_key = data_key if order_key is None else order_key
    params = model.init(init_key)
    opt_state = optimizer.init(params)

    def batch_step(carry, batch):
        params, opt_state = carry
        indices, augment_key = batch
        x = data.to_float(images[indices])
        if augment is not None:
            x = augment(augment_key, x)
        if transform is not None:
            x = transform(x, *transform_params)
        params, opt_state, step_metrics = update_step(params, opt_state, x, targets[indices])
        return (params, opt_state), step_metrics["loss"]

    def epoch(carry, epoch_keys):
        epoch_key, epoch_order_key = epoch_keys
        augment_key = jax.random.split(epoch_key)[1]
        permutation_key = jax.random.split(epoch_order_key)[0]
        order = jax.random.permutation(permutation_key, num_examples)[: steps * config.batch_size]
        batches = (order.reshape(steps, config.batch_size), jax.random.split(augment_key, steps))
        carry, losses = jax.lax.scan(batch_step, carry, batches)
        return carry, losses.mean()

    epoch_keys = (jax.random.split(data_key, config.epochs), jax.random.split(order_key, config.epochs))
    (params, _), epoch_loss = jax.lax.scan(epoch, (params, opt_state), epoch_keys)
    finite = jnp.isfinite(epoch_loss).all() & jax.tree.reduce(
        jnp.logical_and, jax.tree.map(lambda p: jnp.isfinite(p).all(), params)
    )
    return params, TrainLog(epoch_loss, ~finite)


_STATIC = ("model", "task", "config", "augment", "transform")


def data_order_key(key: jax.Array) -> jax.Array:
    """The key from which `train(key, ...)` draws its data order."""
    return jax.random.split(key)[1]


def shared_order_key(keys: jax.Array, config: TrainConfig) -> jax.Array | None:
    """With `config.shared_order`, the first model's data-order key, for every model; else None (each its own)."""
    return data_order_key(keys[0]) if config.shared_order else None


def check_inputs(keys, images, targets, hparams, *, task: tasks.Task, config: TrainConfig, **_) -> None:
    """The contract of `train_seeds` and `train_grid` (see `checks`): S keys (`checks.keys`), images,
    targets the task accepts for every image, a scalar rate > 0 and decay ≥ 0, a config that is a
    `TrainConfig`."""
    checks.keys(keys)
    checks.images(images)
    task.check_targets(targets, images.shape[0])
    for name, value in zip(hparams._fields, hparams):
        if np.ndim(value) != 0:
            raise ValueError(f"{name} must be a scalar (one value for every model), got shape {np.shape(value)}; "
                             "sweep hyperparameters with tuning.grid_search.")
    checks.positive(hparams.learning_rate, "learning_rate")
    checks.positive(hparams.weight_decay, "weight_decay", allow_zero=True)
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a train.TrainConfig, got {type(config).__name__}.")
    if config.batch_size > images.shape[0]:
        raise ValueError(f"batch_size={config.batch_size} is larger than the {images.shape[0]} training images.")


@checks.before(check_inputs)
@compiling.jit(static_argnames=_STATIC)
def train_seeds(keys, images, targets, hparams, *, model, task, config, augment=None, transform=None):
    """`train` vmapped over keys `(S,)`: S models in one compiled program, leading axis S, split over
    every device, `config.models_at_once` at a time (`sharding.over_models`).

    Returns (params, log) with leading axis S. Inputs are checked first
    (`check_inputs`): TypeError or ValueError name a bad one before anything compiles.
    """
    run = functools.partial(train, model=model, task=task, config=config, augment=augment, transform=transform,
                            order_key=shared_order_key(keys, config))
    out = sharding.over_models(jax.vmap(lambda key: run(key, images, targets, hparams)), keys,
                               config.models_at_once)
    return sharding.cut(out, keys.shape[0])


def _check_grid(keys, images, targets, hparams, grid, **kwargs) -> None:
    check_inputs(keys, images, targets, hparams, **kwargs)
    sizes = {np.shape(g)[:1] for g in grid}
    if not grid or len(sizes) != 1 or sizes in ({(0,)}, {()}):
        raise ValueError(f"grid must be a non-empty tuple of parameter arrays sharing their length P, got shapes "
                         f"{[np.shape(g) for g in grid]}.")


@checks.before(_check_grid)
@compiling.jit(static_argnames=_STATIC)
def train_grid(keys, images, targets, hparams, grid, *, model, task, config, transform, augment=None):
    """Models trained on transformed data: P grid points × S seeds in one program.

    grid: the transform's parameters, each `(P,)`; every batch of point p is
    `transform(x, *point_p)` (a fixed shift, say). Returns (params, log) with
    leading axes `(P, S)`. Every point sees the same seeds, so the differences
    between points come from the transform alone. The seeds are split over every device,
    `config.models_at_once` at a time (each trained at all P points). Inputs are checked as in `train_seeds`.
    """
    run = functools.partial(train, model=model, task=task, config=config, augment=augment, transform=transform,
                            order_key=shared_order_key(keys, config))

    def seeds(split):  # (P, S') from S' seeds: every point trains each of them
        return jax.vmap(lambda point: jax.vmap(
            lambda key: run(key, images, targets, hparams, transform_params=point))(split))(tuple(grid))

    return sharding.cut(sharding.over_models(seeds, keys, config.models_at_once, axis=1), keys.shape[0], axis=1)
