"""The training loop on real MNIST: it learns, seeds vmap exactly, tuning picks on validation."""

import functools
import inspect
import re
import warnings

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from realdata import mnist

from mnist_linear import data, evaluate, experiment, linear, metrics, models, tasks, train, transforms, tuning

LINEAR = models.LINEAR
CONFIG = train.TrainConfig(epochs=2, batch_size=100)
HPARAMS = train.Hyperparams(jnp.float32(0.3), jnp.float32(0.0))
ONE_HOT = tasks.regression("one-hot least squares", 10, lambda split: np.eye(10, dtype=np.float32)[split.labels])


def _subset(n, start=0):
    split = mnist().train
    return jnp.asarray(split.images[start : start + n]), jnp.asarray(split.labels[start : start + n])


@functools.partial(jax.jit, static_argnames=("config",))
def _train_one(key, images, labels, hparams, config=CONFIG):
    return train.train(key, images, labels, hparams, model=LINEAR, task=tasks.CLASSIFICATION, config=config)


def test_loss_falls_and_the_model_learns():
    images, labels = _subset(5000)
    params, log = _train_one(jax.random.key(0), images, labels, HPARAMS)
    chex.assert_shape(log.loss, (CONFIG.epochs,))
    assert not log.non_finite
    initial = metrics.cross_entropy(linear.logits(linear.init(jax.random.split(jax.random.key(0))[0]),
                                                  data.to_float(images)), labels)
    assert log.loss[0] < 0.8 * initial and log.loss[1] < log.loss[0]
    test = mnist().test
    accuracy = np.mean(evaluate.outputs(LINEAR.logits, params, jnp.asarray(test.images), reduce=metrics.predict)
                       == test.labels)
    assert accuracy > 0.85, accuracy


def test_vmapped_seeds_equal_seeds_trained_alone():
    images, labels = _subset(2000)
    keys = jax.random.split(jax.random.key(7), 3)
    params, log = train.train_seeds(keys, images, labels, HPARAMS, model=LINEAR,
                                    task=tasks.CLASSIFICATION, config=CONFIG)
    chex.assert_shape(params["w"], (3, 784, 10))
    for s in range(3):
        alone, alone_log = _train_one(keys[s], images, labels, HPARAMS)
        # Same arithmetic; only XLA's summation order may differ between the batched and single programs.
        chex.assert_trees_all_close(jax.tree.map(lambda p: p[s], params), alone, rtol=1e-5, atol=1e-6)
        chex.assert_trees_all_close(log.loss[s], alone_log.loss, rtol=1e-5)
    assert not np.allclose(params["w"][0], params["w"][1])  # different seeds, different models


def test_shared_order_gives_every_seed_the_first_seeds_batches():
    images, labels = _subset(2000)
    keys = jax.random.split(jax.random.key(7), 3)
    shared = train.TrainConfig(epochs=2, batch_size=100, shared_order=True)
    params, _ = train.train_seeds(keys, images, labels, HPARAMS, model=LINEAR, task=tasks.CLASSIFICATION,
                                  config=shared)
    independent, _ = train.train_seeds(keys, images, labels, HPARAMS, model=LINEAR, task=tasks.CLASSIFICATION,
                                       config=CONFIG)
    order_key = train.data_order_key(keys[0])
    for s in range(3):
        alone, _ = jax.jit(functools.partial(train.train, model=LINEAR, task=tasks.CLASSIFICATION, config=shared))(
            keys[s], images, labels, HPARAMS, order_key=order_key)
        chex.assert_trees_all_close(jax.tree.map(lambda p: p[s], params), alone, rtol=1e-5, atol=1e-6)
    # Seed 0's order is its own: it trains as it would alone; the others' orders (and models) change.
    chex.assert_trees_all_close(params["w"][0], independent["w"][0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(params["w"][1], independent["w"][1], atol=1e-4)
    with pytest.raises(ValueError, match="shared_order must be True or False"):
        train.TrainConfig(shared_order=1)


def test_a_sweep_compiles_once():
    """New seeds, new hyperparameter values and new data of the same shapes reuse the compiled program:
    the model's forward pass is traced once, on the first call, and never again."""
    traces = []

    def logits(params, images):
        traces.append(images.shape)
        return linear.logits(params, images)

    model = models.Model(linear.init, logits)
    images, labels = _subset(1000)
    other_images, other_labels = _subset(1000, start=1000)
    run = functools.partial(train.train_seeds, model=model, task=tasks.CLASSIFICATION, config=CONFIG)
    run(jax.random.split(jax.random.key(0), 4), images, labels, HPARAMS)
    first = len(traces)
    assert first >= 1
    run(jax.random.split(jax.random.key(1), 4), other_images, other_labels,
        train.Hyperparams(jnp.float32(0.1), jnp.float32(1e-4)))
    grid = jax.device_put((np.array([0, 1, -1]), np.array([0, 0, 2])))
    params, _ = run(jax.random.split(jax.random.key(2), 4), images, labels, HPARAMS)
    evaluate.grid_outputs(params, images, grid, apply=logits, transform=transforms.translate, reduce=metrics.predict)
    evaluated = len(traces)
    evaluate.grid_outputs(params, other_images, jax.device_put((np.array([2, 0, 0]), np.array([1, 1, 0]))),
                          apply=logits, transform=transforms.translate, reduce=metrics.predict)
    assert len(traces) == evaluated == first + 1  # one trace of training, one of the evaluation


def test_no_program_has_an_input_an_output_could_overwrite():
    """Donating an input lets XLA write an output into its buffer. Lowered with every input donated, no
    training, tuning or evaluation program finds an output of an input's shape and dtype, so none donates:
    the big inputs (images, targets, a sweep's parameters on their way to scoring) match no output, and
    callers keep them for the next phase anyway (a donated input XLA could only use as scratch, JAX's
    `buffer_donor`, would be lost to the caller for nothing)."""
    def spec(shape, dtype=np.float32):
        return jax.ShapeDtypeStruct(shape, dtype)

    keys, images, floats = spec((3,), jax.random.key(0).dtype), spec((600, 28, 28), np.uint8), spec((600, 28, 28))
    labels, targets, scalar = spec((600,), np.int32), spec((600, 4)), train.Hyperparams(spec(()), spec(()))
    params = {"b": spec((3, 10)), "w": spec((3, 784, 10))}
    grid = (spec((5,)), spec((5,)), spec((5,)))
    static = {"model": LINEAR, "config": CONFIG}
    programs = {
        "train_seeds": (train.train_seeds, (keys, images, labels, scalar), {**static, "task": tasks.CLASSIFICATION}),
        "train_seeds, regression": (train.train_seeds, (keys, images, targets, scalar),
                                    {"model": models.get("linear", outputs=4), "config": CONFIG,
                                     "task": tasks.regression("four", 4)}),
        "train_grid": (train.train_grid, (keys, images, labels, scalar, (spec((5,), np.int32),) * 2),
                       {**static, "task": tasks.CLASSIFICATION, "transform": transforms.translate}),
        "tuning": (tuning._train_and_score, (keys, train.Hyperparams(spec((6,)), spec((6,))), images, labels,
                                             images, labels), {**static, "task": tasks.CLASSIFICATION}),
        "seed_outputs": (evaluate.seed_outputs, (params, images), {"apply": LINEAR.logits, "reduce": metrics.predict}),
        "seed_outputs, raw": (evaluate.seed_outputs, (params, floats), {"apply": LINEAR.logits}),
        "grid_outputs": (evaluate.grid_outputs, (params, images, grid),
                         {"apply": LINEAR.logits, "transform": transforms.rotate_translate, "reduce": metrics.predict}),
        "preprocess": (experiment._mapped, (images,), {"input_map": transforms.deskew, "batch_size": 100}),
    }
    # The check sees an alias where there is one: an update of parameters in place.
    assert "tf.aliasing_output" in jax.jit(lambda p: jax.tree.map(lambda a: a * 0.5, p), donate_argnums=0).lower(params).as_text()
    for name, (program, args, kwargs) in programs.items():
        # As compiled, the program donates nothing: not even as scratch.
        assert not {"tf.aliasing_output", "jax.buffer_donor"} & set(re.findall(
            r"tf\.aliasing_output|jax\.buffer_donor", inspect.unwrap(program, stop=lambda f: hasattr(f, "on_cpu"))
            .lower(*args, **kwargs).as_text())), name
        donating = jax.jit(inspect.unwrap(program), static_argnames=tuple(kwargs), donate_argnums=range(len(args)))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Some donated buffers were not usable")
            assert "tf.aliasing_output" not in donating.lower(*args, **kwargs).as_text(), name


def test_bfloat16_products_train_float32_parameters():
    images, labels = _subset(5000)
    x = data.to_float(images[:50])
    params = linear.init(jax.random.key(0), scale=0.05)
    params["b"] = 0.3 * jax.random.normal(jax.random.key(1), (10,))  # a bias, so that the second rounding shows
    # In bfloat16 (8 significant bits): numpy on the inputs rounded to it, the product rounded to it, then the
    # bias added and the sum rounded again, as a bfloat16 program does. Accumulating in float32 rather than
    # float64 may move a value across a rounding boundary, by one bfloat16 step: rarely, never further.
    rounded = lambda a: np.asarray(jnp.asarray(a, jnp.bfloat16), np.float64)  # noqa: E731
    want = rounded(rounded(rounded(x).reshape(50, -1) @ rounded(params["w"])) + rounded(params["b"]))
    got = train.in_dtype(linear.logits, "bfloat16")(params, x)
    assert got.dtype == jnp.float32
    assert (np.asarray(got) == want).mean() > 0.99
    np.testing.assert_allclose(got, want, rtol=2**-7, atol=0)  # one bfloat16 step (2⁻⁸ of 2^e) at most
    assert (np.asarray(linear.logits(params, x)) == want).mean() < 0.5  # float32's products are not it
    config = train.TrainConfig(epochs=2, batch_size=100, compute_dtype="bfloat16")
    trained, log = train.train_seeds(jax.random.split(jax.random.key(0), 2), images, labels, HPARAMS, model=LINEAR,
                                     task=tasks.CLASSIFICATION, config=config)
    chex.assert_trees_all_equal_dtypes(trained, {"w": jnp.zeros((), jnp.float32), "b": jnp.zeros((), jnp.float32)})
    test = mnist().test
    classes = evaluate.seed_outputs(trained, jnp.asarray(test.images), apply=LINEAR.logits, reduce=metrics.predict)
    assert (np.asarray(classes) == test.labels).mean(-1).min() > 0.85
    with pytest.raises(ValueError, match="Unknown compute_dtype"):
        train.TrainConfig(compute_dtype="float16")


def test_training_loop_matches_numpy_sgd():
    """Three steps of `train` against plain numpy: momentum SGD, L2 decay, cosine schedule, and the
    batches taken in the order of the epoch's permutation."""
    images, labels = _subset(300)
    key = jax.random.key(11)
    lr, wd, mu = 0.2, 1e-3, 0.9
    config = train.TrainConfig(epochs=1, batch_size=100, momentum=mu, schedule="cosine")
    params, _ = _train_one(key, images, labels, train.Hyperparams(lr, wd), config=config)

    init_key, data_key = jax.random.split(key)  # the derivation documented in train.train
    order_key, _ = jax.random.split(jax.random.split(data_key, 1)[0])
    order = np.asarray(jax.random.permutation(order_key, 300)).reshape(3, 100)
    p0 = linear.init(init_key)
    w, b = np.asarray(p0["w"], np.float64), np.asarray(p0["b"], np.float64)
    x = np.asarray(images, np.float64).reshape(300, -1) / 255
    y = np.asarray(labels)
    trace_w, trace_b = np.zeros_like(w), np.zeros_like(b)
    for t in range(3):
        xb, yb = x[order[t]], y[order[t]]
        z = xb @ w + b
        p = np.exp(z - z.max(-1, keepdims=True))
        delta = p / p.sum(-1, keepdims=True) - np.eye(10)[yb]
        gw, gb = xb.T @ delta / 100 + wd * w, delta.mean(0) + wd * b
        trace_w, trace_b = gw + mu * trace_w, gb + mu * trace_b
        scale = 0.5 * (1 + np.cos(np.pi * t / 3))
        w, b = w - lr * scale * trace_w, b - lr * scale * trace_b
    chex.assert_trees_all_close(params, {"w": w, "b": b}, rtol=1e-6, atol=1e-7)  # float32 steps: ~1e-8 measured


def _np_shift(image, dx, dy):
    """One image shifted right by dx and down by dy, zeros in from the edge: slices, not `transforms`."""
    h, w = image.shape
    out = np.zeros_like(image)
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = image[max(-dy, 0):h - max(dy, 0),
                                                                      max(-dx, 0):w - max(dx, 0)]
    return out


def test_two_epochs_with_augmentation_match_numpy_sgd():
    """Two epochs of `train` with random shifts against numpy: each epoch's own permutation, each step's own
    augmentation key (the derivation documented in `train.train`), the shift applied before the product, the
    cosine schedule over both epochs, and the logged epoch-mean loss."""
    images, labels = _subset(300)
    key, (lr, wd, mu) = jax.random.key(5), (0.2, 1e-3, 0.9)
    config = train.TrainConfig(epochs=2, batch_size=100, momentum=mu)
    augment = functools.partial(transforms.random_shift, max_shift=2)
    params, log = jax.jit(functools.partial(train.train, model=LINEAR, task=tasks.CLASSIFICATION, config=config,
                                            augment=augment))(key, images, labels, train.Hyperparams(lr, wd))

    init_key, data_key = jax.random.split(key)
    p0 = linear.init(init_key)
    w, b = np.asarray(p0["w"], np.float64), np.asarray(p0["b"], np.float64)
    x, y = np.asarray(images, np.float64) / 255, np.asarray(labels)
    trace_w, trace_b, losses = np.zeros_like(w), np.zeros_like(b), []
    for epoch, epoch_key in enumerate(jax.random.split(data_key, 2)):  # the order key is the data key here
        permutation_key, augment_key = jax.random.split(epoch_key)
        order = np.asarray(jax.random.permutation(permutation_key, 300)).reshape(3, 100)
        epoch_losses = []
        for t, step_key in enumerate(jax.random.split(augment_key, 3)):
            dx, dy = np.asarray(jax.random.randint(step_key, (2, 100), -2, 3))
            xb = np.stack([_np_shift(x[i], a, c) for i, a, c in zip(order[t], dx, dy)]).reshape(100, -1)
            z = xb @ w + b
            logp = z - z.max(-1, keepdims=True) - np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True))
            epoch_losses.append(-logp[np.arange(100), y[order[t]]].mean())
            delta = np.exp(logp) - np.eye(10)[y[order[t]]]
            trace_w = xb.T @ delta / 100 + wd * w + mu * trace_w
            trace_b = delta.mean(0) + wd * b + mu * trace_b
            scale = 0.5 * (1 + np.cos(np.pi * (3 * epoch + t) / 6))
            w, b = w - lr * scale * trace_w, b - lr * scale * trace_b
        losses.append(np.mean(epoch_losses))
    chex.assert_trees_all_close(params, {"w": w, "b": b}, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(log.loss, losses, rtol=1e-6)
    assert not log.non_finite


def test_same_seed_same_numbers():
    images, labels = _subset(1000)
    a, _ = _train_one(jax.random.key(3), images, labels, HPARAMS)
    b, _ = _train_one(jax.random.key(3), images, labels, HPARAMS)
    chex.assert_trees_all_equal(a, b)


def test_seed_keys_are_jax_random_split_bit_for_bit():
    """`experiment.seed_keys` is one compiled program: the keys eager `split(key(seed), count)` gives."""
    for seed, count in ((0, 1), (0, 5), (7, 3), (2**31 - 1, 2), (-3, 2)):
        want = jax.random.key_data(jax.random.split(jax.random.key(seed), count))
        np.testing.assert_array_equal(jax.random.key_data(experiment.seed_keys(seed, count)), want)
    np.testing.assert_array_equal(jax.random.key_data(experiment.seed_keys(0, 5))[:2],
                                  jax.random.key_data(experiment.seed_keys(0, 2)))  # model s keeps key s
    for seed, count in ((0, 0), (0.5, 2), (0, 2.0), (True, 2)):
        with pytest.raises(ValueError, match="must be an int"):
            experiment.seed_keys(seed, count)


def test_divergence_is_reported_not_hidden():
    """Least squares on one-hot targets with a step far above 2/L blows up; the log says so."""
    images, labels = _subset(1000)
    targets = jax.nn.one_hot(labels, 10)
    config = train.TrainConfig(epochs=1, batch_size=100, schedule="constant")
    run = functools.partial(train.train, model=LINEAR, task=ONE_HOT, config=config)
    _, log = jax.jit(run)(jax.random.key(0), images, targets, train.Hyperparams(10.0, 0.0))
    assert bool(log.non_finite) and not np.isfinite(log.loss[-1])
    _, log = jax.jit(run)(jax.random.key(0), images, targets, train.Hyperparams(0.01, 0.0))
    assert not bool(log.non_finite) and np.isfinite(log.loss[-1])


def test_grid_search_picks_on_validation():
    split = data.Split(*(np.asarray(a) for a in _subset(3000)))
    fit, val = data.split_validation(split, 1000)
    config = train.TrainConfig(epochs=1, batch_size=100)
    with pytest.warns(UserWarning, match="edge of the grid"):  # 0.1 is the largest rate on offer
        grid = tuning.grid_search(jax.random.key(0), fit, val, model=LINEAR, task=tasks.CLASSIFICATION,
                                  config=config, learning_rates=(1e-4, 0.1), weight_decays=(0.0, 1e-3), seeds=2)
    chex.assert_shape(grid.val_score, (2, 2, 2))
    assert grid.best.learning_rate == 0.1  # 1e-4 for one epoch barely moves from the initial weights
    assert grid.val_score[1].mean() > grid.val_score[0].mean() + 0.2
    assert len(grid.records()) == 8
    # Grid point (lr, wd, seed 0) is reproduced by training it alone with seed 0's key.
    j = list(grid.weight_decays).index(grid.best.weight_decay)
    hparams = train.Hyperparams(jnp.float32(grid.best.learning_rate), jnp.float32(grid.best.weight_decay))
    key = jax.random.split(jax.random.key(0), 2)[0]
    params, _ = _train_one(key, jnp.asarray(fit.images), jnp.asarray(fit.labels), hparams, config=config)
    x = val.images.reshape(1000, -1).astype(np.float64) / 255
    correct = np.sum(np.argmax(x @ np.asarray(params["w"]) + np.asarray(params["b"]), -1) == val.labels)
    np.testing.assert_allclose(correct / 1000, grid.val_score[1, j, 0], atol=1e-3)
    assert grid.on_edge and grid.recipe()["learning_rates"] == [1e-4, 0.1]


def _least_squares_grid(learning_rates):
    """Regression on one-hot targets, scored by −MSE on the validation split."""
    images, labels = (np.asarray(a) for a in _subset(2000))
    fit, val = data.Split(images[:1500], labels[:1500]), data.Split(images[1500:], labels[1500:])
    return tuning.grid_search(jax.random.key(0), fit, val, model=LINEAR, task=ONE_HOT,
                              config=train.TrainConfig(epochs=1, batch_size=100, schedule="constant"),
                              learning_rates=learning_rates, weight_decays=(0.0,))


def test_grid_search_skips_failed_points():
    with pytest.warns(UserWarning, match="edge of the grid"):
        grid = _least_squares_grid((0.01, 10.0))
    assert (grid.failed[1] == "loss or parameters became inf or nan").all() and (grid.failed[0] == "").all()
    assert grid.best.learning_rate == 0.01
    with pytest.raises(FloatingPointError, match="lower the learning rates"):
        _least_squares_grid((10.0, 30.0))


def test_train_grid_equals_training_on_transformed_data():
    """Training at a fixed shift inside the grid vmap equals training alone on pre-shifted images."""
    images, labels = _subset(1000)
    keys = jax.random.split(jax.random.key(0), 2)
    config = train.TrainConfig(epochs=1, batch_size=100)
    params, _ = train.train_grid(keys, images, labels, HPARAMS, (np.array([0, 3]), np.array([0, -1])),
                                 model=LINEAR, task=tasks.CLASSIFICATION, config=config,
                                 transform=transforms.translate)
    chex.assert_shape(params["w"], (2, 2, 784, 10))
    alone, _ = _train_one(keys[1], transforms.translate(images, 3, -1), labels, HPARAMS, config=config)
    chex.assert_trees_all_close(jax.tree.map(lambda p: p[1, 1], params), alone, rtol=1e-5, atol=1e-6)


def test_training_on_images_mapped_once_is_training_the_preprocessed_model():
    """`experiment.preprocess` deskews every training image once (in chunks, the last one padded and
    cut); training on its output gives the weights that training `models.preprocessed(linear, deskew)`
    gives, which deskews every batch again."""
    from mnist_linear import experiment, sharding

    split = mnist().train.take(slice(0, 2000))
    placed = sharding.replicated(split)
    mapped, timing = experiment.preprocess(placed, transforms.deskew, batch_size=300)
    assert mapped.images.dtype == jnp.float32 and set(timing) == {"compile_s", "run_s"}
    np.testing.assert_array_equal(mapped.labels, split.labels)
    direct = np.asarray(transforms.deskew(jnp.asarray(split.images, jnp.float32) / 255))
    # Chunks of 300 against one batch of 2000: the moments' float32 sums round differently, which moves the
    # sampling points by about 1e-6 px.
    np.testing.assert_allclose(np.asarray(mapped.images), np.clip(direct, 0, 1), atol=1e-5)
    keys, hparams = jax.random.split(jax.random.key(3), 2), train.Hyperparams(jnp.float32(0.1), jnp.float32(1e-4))
    kwargs = {"task": tasks.CLASSIFICATION, "config": train.TrainConfig(epochs=2)}
    once, _ = train.train_seeds(keys, mapped.images, placed.labels, hparams, model=models.LINEAR, **kwargs)
    every, _ = train.train_seeds(keys, placed.images, placed.labels, hparams,
                                 model=models.preprocessed(models.LINEAR, transforms.deskew), **kwargs)
    np.testing.assert_allclose(np.asarray(once["w"]), np.asarray(every["w"]), atol=1e-5)
    assert np.abs(np.asarray(once["w"])).max() > 1e-2  # trained, not still at the initialisation
    with pytest.raises(ValueError, match="batch_size must be an int"):
        experiment.preprocess(placed, transforms.deskew, batch_size=0)
