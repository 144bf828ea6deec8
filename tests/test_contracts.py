"""Wrong input gets a clear error, never a wrong number: one test per case of the contracts issue."""

import gzip
import math
import warnings

import chex
import jax
import jax.numpy as jnp
import matplotlib.image
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from realdata import mnist

from experiments import baseline, ladder
from mnist_linear import (data, evaluate, experiment, invariance, linear, metrics, models, plots, stats, tables,
                          tasks, train, transforms, tuning)

CONFIG = train.TrainConfig(epochs=1, batch_size=100)
HPARAMS = train.Hyperparams(jnp.float32(0.3), jnp.float32(0.0))
KEYS = jax.random.split(jax.random.key(0), 2)


def _subset(n=2000):
    split = mnist().train
    return split.images[:n], split.labels[:n]


def _train(images, labels, hparams=HPARAMS, model=models.LINEAR):
    return train.train_seeds(KEYS, images, labels, hparams, model=model, task=tasks.CLASSIFICATION, config=CONFIG)


# 1. Float images in [0, 1] are taken as they are, at every entry point.

def test_float_images_in_unit_range_are_not_scaled_again():
    np.testing.assert_allclose(data.to_float(np.array([0, 128, 255], np.uint8) / 255.0), [0, 128 / 255, 1], rtol=1e-6)
    images, labels = _subset()
    params, _ = _train(images, labels)
    floats, _ = _train(images.astype(np.float32) / 255, labels)
    chex.assert_trees_all_close(floats, params, rtol=1e-5, atol=1e-6)  # the same training, not 50 %
    test = mnist().test
    as_uint8 = evaluate.seed_outputs(params, test.images, apply=linear.logits, reduce=metrics.predict)
    as_float = evaluate.seed_outputs(params, test.images.astype(np.float32) / 255, apply=linear.logits,
                                     reduce=metrics.predict)
    assert (np.asarray(as_uint8) == np.asarray(as_float)).mean() > 0.9999
    assert (np.asarray(as_float) == test.labels).mean() > 0.8  # one epoch on 2,000 images; scaled twice: 8.9 %


@pytest.mark.parametrize("entry", ["to_float", "train_seeds", "train_grid", "grid_search", "seed_outputs",
                                   "grid_outputs", "outputs"])
def test_floats_outside_the_unit_range_and_other_dtypes_are_refused_everywhere(entry):
    images, labels = _subset(300)
    params = jax.vmap(linear.init)(KEYS)
    calls = {
        "to_float": lambda x: data.to_float(x),
        "train_seeds": lambda x: _train(x, labels),
        "train_grid": lambda x: train.train_grid(KEYS, x, labels, HPARAMS, (np.array([0]), np.array([0])),
                                                 model=models.LINEAR, task=tasks.CLASSIFICATION, config=CONFIG,
                                                 transform=lambda im, dx, dy: im),
        "grid_search": lambda x: tuning.grid_search(KEYS[0], data.Split(x[:200], labels[:200]),
                                                    data.Split(x[200:], labels[200:]), model=models.LINEAR,
                                                    config=CONFIG, learning_rates=(0.1,), weight_decays=(0.0,)),
        "seed_outputs": lambda x: evaluate.seed_outputs(params, x, apply=linear.logits),
        "grid_outputs": lambda x: evaluate.grid_outputs(params, x, (np.zeros(2),), apply=linear.logits,
                                                        transform=lambda im, a: im),
        "outputs": lambda x: evaluate.outputs(linear.logits, jax.tree.map(lambda p: p[0], params), x),
    }
    with pytest.raises(ValueError, match=r"outside \[0, 1\].*divide float pixels by 255"):
        calls[entry](images.astype(np.float32))  # 0–255 as floats
    with pytest.raises(TypeError, match="uint8 pixels"):
        calls[entry](images.astype(np.int32))


# 2. Losses and metrics check their shapes under any rank-promotion setting.

@pytest.mark.parametrize("promotion", ["allow", "raise"])
def test_losses_and_metrics_refuse_shapes_that_would_broadcast(promotion):
    with jax.numpy_rank_promotion(promotion):
        column, flat = jnp.array([[1.0], [2.0], [3.0], [4.0]]), jnp.array([1.0, 2.0, 3.0, 5.0])
        with pytest.raises(ValueError, match="same shape"):
            metrics.mean_squared_error(column, flat)
        with pytest.raises(ValueError, match="same shape"):
            metrics.mean_squared_error(flat, flat)  # 1-D would sum over examples
        assert float(metrics.mean_squared_error(column, flat[:, None])) == 0.25
        logits = jnp.eye(10)[jnp.array([3, 1, 4, 1])]
        with pytest.raises(ValueError, match="labels"):
            metrics.accuracy(logits, jnp.array([[3], [1], [4], [0]]))
        assert float(metrics.accuracy(logits, jnp.array([3, 1, 4, 0]))) == 0.75
        with pytest.raises(ValueError, match="labels"):
            metrics.cross_entropy(logits, jnp.array([[3], [1], [4], [0]]))


# 3. Labels outside [0, C) are named with where they are.

@pytest.mark.parametrize("bad", [-1, 10])
def test_labels_outside_the_classes_are_refused_with_their_positions(bad):
    images, labels = _subset(500)
    labels = labels.copy()
    labels[[7, 123]] = bad
    with pytest.raises(ValueError, match=rf"\[0, 10\); found {bad} at index 7, {bad} at index 123 \(2 of 500"):
        _train(images, labels)
    with pytest.raises(ValueError, match=rf"found {bad} at index 7"):
        tuning.grid_search(KEYS[0], data.Split(images[:400], labels[:400]), data.Split(images[400:], labels[400:]),
                           model=models.LINEAR, config=CONFIG, learning_rates=(0.1,), weight_decays=(0.0,))
    with pytest.raises(ValueError, match="class indices"):
        _train(images, np.eye(10, dtype=np.int32)[np.clip(labels, 0, 9)])  # one-hot rows


# 4. A run that explodes without reaching inf is a failed run, reported and kept out of means.

def test_failure_definition_against_hand_made_logs():
    log = train.TrainLog(loss=np.array([[2.0, 0.5], [2.0, 1.8e11], [2.0, 2.1], [0.4, 0.6], [np.nan, np.nan]]),
                         non_finite=np.array([False, False, False, False, True]))
    reasons = train.failures(log, math.log(10))
    assert reasons[0] == ""
    assert "1.8e+11 no better than chance (2.3)" in reasons[1]
    assert reasons[2] == "final training loss 2.1 no better than its first epoch's 2"
    assert "first epoch" in reasons[3] and reasons[4] == "loss or parameters became inf or nan"
    one_epoch = train.TrainLog(loss=np.array([[1.0]]), non_finite=np.array([False]))
    assert train.failures(one_epoch, math.log(10))[0] == ""  # one epoch: only chance and inf or nan apply
    # A model that learned only the class frequencies sits at the labels' entropy, below log 10: failed too.
    labels = mnist().train.labels
    entropy = tasks.CLASSIFICATION.chance_loss(labels)
    p = np.bincount(labels) / len(labels)
    np.testing.assert_allclose(entropy, -np.sum(p * np.log(p)))
    assert 2.29 < entropy < math.log(10)
    stuck = train.TrainLog(loss=np.array([[2.3019, entropy + 1e-4]]), non_finite=np.array([False]))
    assert "no better than chance" in train.failures(stuck, entropy)[0]


@pytest.mark.xdist_group("ladder")  # after or before test_ladder_quick on one worker: the same programs
def test_mlp_at_learning_rate_100_fails_and_the_ladder_says_so(tmp_path, capsys):
    """The issue's case: the tables are still written, say which runs failed, and the run exits non-zero."""
    out = tmp_path / "ladder"
    with pytest.raises(experiment.EveryRunFailed, match="Every run of .*mlp.* failed .*lower it"):
        ladder.main(["--out", str(out), "--quick", "--deep-learning-rate", "100"])
    assert "FAILED mlp, seed 0" in capsys.readouterr().err
    table = (out / "table.md").read_text()
    assert "| MLP (300 hidden) | 238,510 | every run failed |" in table
    assert "Failed runs, left out of every mean: MLP (300 hidden) seed 0 (" in table
    assert (out / "ladder.png").exists() and (out / "results.json").exists()


# 5. Bad configurations: see tests/test_config.py (every field, before anything compiles).

def test_bad_hyperparameters_and_configs_fail_before_compiling():
    images, labels = _subset(500)
    for rate in (0.0, -0.1):
        with pytest.raises(ValueError, match="learning_rate must be > 0"):
            _train(images, labels, train.Hyperparams(jnp.float32(rate), jnp.float32(0.0)))
    with pytest.raises(ValueError, match="weight_decay must be ≥ 0"):
        _train(images, labels, train.Hyperparams(jnp.float32(0.1), jnp.float32(-1e-4)))
    for field, value in (("epochs", 0), ("batch_size", 0), ("momentum", 1.0), ("schedule", "linear"),
                         ("models_at_once", -1), ("models_at_once", 1.5)):
        with pytest.raises(ValueError, match=field):
            train.TrainConfig(**{field: value})
    with pytest.raises(TypeError, match="keys"):
        train.train_seeds(jnp.zeros((0,), jax.random.key(0).dtype), images, labels, HPARAMS, model=models.LINEAR,
                          task=tasks.CLASSIFICATION, config=CONFIG)


def test_arguments_of_the_wrong_shape_or_range_are_named_before_compiling():
    images, labels = _subset(500)
    key = jax.random.key(0)
    for one in (key, jax.random.PRNGKey(0)):
        with pytest.raises(TypeError, match=r"for one model pass key\[None\]"):
            train.train_seeds(one, images, labels, HPARAMS, model=models.LINEAR, task=tasks.CLASSIFICATION,
                              config=CONFIG)
    per_class = train.Hyperparams(jnp.full((10,), 0.1), jnp.float32(0.0))  # would broadcast onto w and b
    with pytest.raises(ValueError, match=r"learning_rate must be a scalar .* shape \(10,\)"):
        _train(images, labels, per_class)
    with pytest.raises(ValueError, match="grid must be a non-empty tuple"):
        train.train_grid(KEYS, images, labels, HPARAMS, (np.int32(1), np.int32(2)), model=models.LINEAR,
                         task=tasks.CLASSIFICATION, config=CONFIG, transform=transforms.translate)
    params = jax.vmap(linear.init)(KEYS)
    grid = (np.zeros(3, np.int32), np.zeros(3, np.int32))
    for bad, match in (((), "grid must be a non-empty tuple"), ((np.int32(1), np.int32(0)), "share their length")):
        with pytest.raises(ValueError, match=match):
            evaluate.grid_outputs(params, images, bad, apply=linear.logits, transform=transforms.translate)
    with pytest.raises(ValueError, match="points_at_once must be an int ≥ 1, got 0"):
        evaluate.grid_outputs(params, images, grid, apply=linear.logits, transform=transforms.translate,
                              points_at_once=0)
    with pytest.raises(ValueError, match="models_at_once must be an int ≥ 0, got -1"):
        evaluate.seed_outputs(params, images, apply=linear.logits, models_at_once=-1)
    for shift, match in ((-2, "max_shift must be an int ≥ 0"), (28, "max_shift of 28 px is not smaller"),
                         (1.5, "max_shift must be an int")):
        with pytest.raises(ValueError, match=match):
            transforms.random_shift(key, jnp.zeros((4, 28, 28)), shift)
    with pytest.raises(ValueError, match="max_shift must be an int ≥ 0"):
        transforms.random_offsets(key, 4, -2)
    for two in (np.array(2), jnp.int32(2), np.int64(2)):  # 0-d integer arrays are ints
        chex.assert_shape(transforms.random_offsets(key, 4, two), [(4,), (4,)])
    with pytest.raises(ValueError, match="has 3 values for a grid of 2 arrays"):
        invariance.index(grid, (0, 0, 99))
    with pytest.raises(ValueError, match=r"Grid points \[-1\] are outside \[0, 3\)"):
        invariance.top1_change(np.zeros((3, 2, 5), int), -1, [1])
    with pytest.raises(ValueError, match=r"top1_change takes classes \(P, S, N\)"):
        invariance.top1_change(np.zeros((3, 5), int), 0, [1])


def test_the_edge_of_a_tuning_grid_is_found_by_value_in_any_order():
    """A grid given out of order: its largest learning rate is the best point, in the middle of the list."""
    split = data.Split(*_subset(2000))
    fit, val = data.split_validation(split, 500)
    run = dict(model=models.LINEAR, task=tasks.CLASSIFICATION, config=CONFIG, weight_decays=(0.0,))
    with pytest.warns(UserWarning, match="edge of the grid"):
        grid = tuning.grid_search(jax.random.key(0), fit, val, learning_rates=(1e-4, 0.3, 0.01), seeds=np.int64(1),
                                  **run)
    assert grid.best.learning_rate == 0.3 and grid.on_edge
    # The smallest decay is a natural bound, not an edge, wherever it stands in the list.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        grid = tuning.grid_search(jax.random.key(0), fit, val, learning_rates=(0.3,), seeds=1,
                                  **{**run, "weight_decays": (1.0, 0.0)})
    assert grid.best.weight_decay == 0.0 and not grid.on_edge
    for seeds in (True, 0):
        with pytest.raises(ValueError, match="seeds must be an int ≥ 1"):
            tuning.grid_search(jax.random.key(0), fit, val, learning_rates=(0.1,), seeds=seeds, **run)


# 6. Intervals of an accuracy stay inside [0, 100].

def test_intervals_outside_the_unit_range_are_not_printed():
    wide = stats.summarize([0.63, 0.99])  # two seeds: the t-interval runs past 100 %
    assert wide.ci_high > 1 and tables.interval(wide) == "—"
    narrow = stats.summarize([0.925, 0.926, 0.927])
    assert tables.interval(narrow) == f"[{100 * narrow.ci_low:.2f}, {100 * narrow.ci_high:.2f}]"


# 7. Images of the wrong shape are refused with the expected shape; one image gives one row.

@pytest.mark.parametrize("name", ["linear", "mlp", "cnn_small"])
def test_flat_pixels_are_refused_and_a_single_image_gives_one_row(name):
    model = models.get(name)
    params, logits = jax.jit(model.init)(jax.random.key(0)), jax.jit(model.logits)  # refused while tracing
    x = data.to_float(mnist().test.images[:4])
    for flat in (x.reshape(4, 784), x[:1].reshape(1, 784)):
        with pytest.raises(ValueError, match=r"\(\.\.\., 28, 28\).*reshape"):
            logits(params, flat)
    one = logits(params, x[0])
    chex.assert_shape(one, (10,))
    np.testing.assert_allclose(one, logits(params, x)[0], rtol=1e-5, atol=1e-5)
    seeds = jax.tree.map(lambda p: p[None], params)
    classes = evaluate.seed_outputs(seeds, mnist().test.images[0], apply=model.logits, reduce=metrics.predict)
    chex.assert_shape(classes, (1, 1))
    assert int(classes[0, 0]) == int(jnp.argmax(one))
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        evaluate.seed_outputs(seeds, mnist().test.images[:4].reshape(4, 784), apply=model.logits)


# 8. Figures of broken models.

def test_template_colours_come_from_finite_values(tmp_path):
    params = linear.init(jax.random.key(0))
    images = np.asarray(linear.templates(params)).copy()
    images[3, 5, 5] = np.nan
    limit = plots.templates(images, [str(i) for i in range(10)], tmp_path / "t.png", title="nan")
    finite = images[np.isfinite(images)]
    assert limit == pytest.approx(np.percentile(np.abs(finite), 99.5))  # on main: nan, every panel solid
    panel = matplotlib.image.imread(tmp_path / "t.png")
    assert panel.shape[0] > 100 and np.isfinite(panel).all()


def test_figures_draw_the_first_seed_that_did_not_fail():
    params = {"w": np.stack([np.full((2, 2), np.nan), np.ones((2, 2))])}
    seed, chosen = experiment.good_seed(params, np.array(["loss or parameters became inf or nan", ""]))
    assert seed == 1 and np.isfinite(chosen["w"]).all()
    assert experiment.good_seed(params, np.array(["x", "y"])) is None


def test_a_grid_where_every_point_fails_stops_before_training_and_writes_nothing(tmp_path):
    out = tmp_path / "b"
    with pytest.raises(FloatingPointError, match="Every grid point failed .*lower the learning rates"):
        baseline.main(["--out", str(out), "--quick", "--learning-rates", "1000", "2000"])
    assert not out.exists()


# 9. Provenance that agrees with itself.

def test_provenance_records_the_settings_that_change_numbers(monkeypatch):
    env = experiment.environment()
    assert env["jax_default_prng_impl"] == "threefry2x32" and "jax_threefry_partitionable" in env
    assert env["cpu_count"] >= 1 and "jax_default_matmul_precision" in env
    monkeypatch.setattr(experiment, "_git", lambda *args: None)
    env = experiment.environment()
    assert env["git_commit"] is None and env["git_dirty"] is None


# The IDX reader, fuzzed: every malformed file ends in DataError naming it.

HEADERS = st.tuples(
    st.sampled_from([0x00000803, 0x00000801, 0x00000802, 0x00000903, 0x00000800, 0x08030000, 0x00000C03]),
    st.lists(st.integers(0, 2 ** 32 - 1) | st.integers(0, 40), max_size=5),
    st.binary(max_size=300), st.booleans())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(HEADERS, st.integers(-12, 12))
@example((0x00000803, [], b"\xa6\x00\x00\x00\xc5e\xc8|", False), 4)  # shape (2785017856, 3311782012, 0)
@example((0x00000803, [0, 28, 28], b"", False), 0)  # no images at all
@example((0x00000801, [3], b"abc", False), 0)  # well-formed: the reader must give these bytes back
@example((0x00000803, [2, 2, 2], bytes(range(8)), False), 0)
def test_the_idx_reader_never_fails_any_other_way(tmp_path, case, cut):
    """Any dimension count and sizes, truncated and oversized payloads, wrong magic and type codes,
    broken gzip: DataError naming the file, or exactly the array the header describes."""
    magic, dims, payload, gz = case
    content = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims) + payload
    content = content[:cut] if cut < 0 else content + bytes(cut)
    stored = gzip.compress(content, mtime=0)[: None if cut % 3 else -1 - cut % 7] if gz else content
    path = tmp_path / "fuzz-idx1-ubyte"
    path.write_bytes(stored)
    try:
        out = data.read_idx(path)
    except data.DataError as e:
        assert str(path) in str(e)
        return
    ndim = magic & 0xFF
    shape = tuple(int.from_bytes(content[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    assert magic in (0x00000803, 0x00000801) and out.dtype == np.uint8 and out.shape == shape
    assert out.tobytes() == content[4 + 4 * ndim:]
