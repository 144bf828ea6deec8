"""The flax models: im2col against XLA's convolution, parameter counts by hand, shapes, equivalences."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized
from realdata import batch

from experiments import locality
from mnist_linear import linear, models, tables, tasks, train, transforms


def _conv_reference(x, kernel, padding):
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        precision=jax.lax.Precision.HIGHEST)


class ConvTest(chex.TestCase, parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.product(size=(3, 5), padding=("SAME", "VALID"), channels=(1, 6))
    def test_im2col_matches_lax_conv(self, size, padding, channels):
        x, _ = batch(8)
        x = jnp.asarray(x)[..., None]
        if channels > 1:  # real images in every channel, each scaled differently
            x = x * (jnp.arange(1, channels + 1, dtype=jnp.float32) / channels).reshape(1, 1, 1, -1)
        conv = models.Conv(features=7, size=size, padding=padding)
        params = conv.init(jax.random.key(0), x)
        got = self.variant(conv.apply)(params, x)
        want = _conv_reference(x, params["params"]["kernel"], padding) + params["params"]["bias"].reshape(1, 1, 1, -1)
        chex.assert_shape(got, want.shape)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.product(size=(3, 5), padding=("SAME", "VALID"), channels=(1, 6))
    def test_pooled_convolution_matches_lax_conv_then_reduce_window(self, size, padding, channels):
        x, _ = batch(8)
        x = jnp.asarray(x)[..., None] * (jnp.arange(1, channels + 1, dtype=jnp.float32) / channels).reshape(1, 1, 1, -1)
        conv = models.Conv(features=7, size=size, padding=padding, pool=True)
        params = conv.init(jax.random.key(0), x)
        got = self.variant(conv.apply)(params, x)
        full = _conv_reference(x, params["params"]["kernel"], padding) + params["params"]["bias"].reshape(1, 1, 1, -1)
        want = jax.lax.reduce_window(full, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        chex.assert_shape(got, want.shape)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

    def test_max_pool_matches_reduce_window(self):
        x, _ = batch(4)
        x = jnp.asarray(x)[..., None] * jnp.arange(1.0, 4.0).reshape(1, 1, 1, -1)
        want = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        chex.assert_trees_all_equal(models.max_pool(x), want)

    def test_the_small_cnn_equals_convolution_relu_then_pooling(self):
        """The whole model against the textbook order (XLA's convolution, ReLU, then max pooling), same
        parameters: the pooled products, the bias after the maximum and ReLU after the pooling change nothing."""
        def conv(x, p, padding):
            return _conv_reference(x, p["kernel"], padding) + p["bias"].reshape(1, 1, 1, -1)

        def pool(x):
            return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")

        x, _ = batch(16)
        model = models.get("cnn_small")
        params = model.init(jax.random.key(0))
        h = pool(jax.nn.relu(conv(jnp.asarray(x)[..., None], params["Conv_0"], "SAME")))
        h = pool(jax.nn.relu(conv(h, params["Conv_1"], "VALID"))).reshape(len(x), -1)
        for name in ("Dense_1", "Dense_0", "Dense_2"):  # flax numbers Dense(84)(Dense(120)(x)) as it builds them
            h = jnp.dot(h, params[name]["kernel"], precision="highest") + params[name]["bias"].reshape(1, -1)
            h = jax.nn.relu(h) if name != "Dense_2" else h
        with jax.default_matmul_precision("float32"):
            got = model.logits(params, jnp.asarray(x))
        np.testing.assert_allclose(got, h, rtol=1e-5, atol=1e-5)

    def test_the_other_deep_models_equal_their_textbook_forward_passes(self):
        """The MLP in numpy (float64); the larger CNN and the global-pooling CNN as XLA's convolution, ReLU,
        max pooling (`reduce_window`) and dense layers at the highest precision, same parameters."""
        def conv(x, p):
            return _conv_reference(x, p["kernel"], "SAME") + p["bias"].reshape(1, 1, 1, -1)

        def pool(x):
            return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")

        def dense(h, p):
            return jnp.dot(h, p["kernel"], precision="highest") + p["bias"].reshape(1, -1)

        def larger(params, x):  # per block: conv, ReLU, conv, ReLU, pool
            h = x[..., None]
            for block in range(2):  # flax names Conv(pool=True)(relu(Conv(x))) outer first, as it builds them
                h = jax.nn.relu(conv(h, params[f"Conv_{2 * block + 1}"]))
                h = pool(jax.nn.relu(conv(h, params[f"Conv_{2 * block}"])))
            return dense(jax.nn.relu(dense(h.reshape(len(x), -1), params["Dense_0"])), params["Dense_1"])

        def global_pool(params, x):  # conv, ReLU, pool; conv, ReLU, pool; conv, ReLU; mean over the image
            h = x[..., None]
            for i in range(3):
                h = jax.nn.relu(conv(h, params[f"Conv_{i}"]))
                h = pool(h) if i < 2 else h
            return dense(h.mean(axis=(1, 2)), params["Dense_0"])

        x, _ = batch(16)
        mlp = models.get("mlp")
        params = jax.jit(mlp.init)(jax.random.key(1))
        p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
        hidden = np.maximum(x.reshape(16, -1) @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"], 0)
        with jax.default_matmul_precision("float32"):
            np.testing.assert_allclose(jax.jit(mlp.logits)(params, jnp.asarray(x)),
                                       hidden @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"], rtol=1e-5, atol=1e-5)
            for name, reference in (("cnn_large", larger), ("cnn_gap", global_pool)):
                model = models.get(name)
                params = jax.jit(model.init)(jax.random.key(2))
                np.testing.assert_allclose(jax.jit(model.logits)(params, jnp.asarray(x)),
                                           jax.jit(reference)(params, jnp.asarray(x)), rtol=1e-5, atol=1e-5,
                                           err_msg=name)

    def test_pooling_refuses_an_odd_output_size(self):
        with pytest.raises(ValueError, match="even output size, got 25×25"):
            models.Conv(features=2, size=3, padding="VALID", pool=True).init(jax.random.key(0), jnp.zeros((1, 27, 27, 1)))

    def test_unknown_padding_is_refused(self):
        with pytest.raises(ValueError, match="padding"):
            models.patches(jnp.zeros((1, 4, 4, 1)), 3, "FULL")


@pytest.mark.parametrize("name, kwargs, count", [
    ("linear", {}, 784 * 10 + 10),
    ("mlp", {}, 784 * 300 + 300 + 300 * 10 + 10),
    # LeNet-5 layout: conv 5×5 1->6, conv 5×5 6->16, 400->120->84->10.
    ("cnn_small", {}, (25 * 6 + 6) + (25 * 6 * 16 + 16) + (400 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10)),
    ("cnn_large", {"widths": (16, 32), "hidden": 128},
     (9 * 16 + 16) + (9 * 16 * 16 + 16) + (9 * 16 * 32 + 32) + (9 * 32 * 32 + 32) + (7 * 7 * 32 * 128 + 128) + 1290),
    ("cnn_gap", {"widths": (8, 16, 32)}, (9 * 8 + 8) + (9 * 8 * 16 + 16) + (9 * 16 * 32 + 32) + (32 * 10 + 10)),
    ("templates", {"k": 4}, 784 * 40 + 40),
])
def test_parameter_counts(name, kwargs, count):
    model = models.get(name, **kwargs)
    params = jax.jit(model.init)(jax.random.key(0))
    assert models.parameter_count(params) == count
    x, _ = batch(5)
    logits = jax.jit(model.logits)
    out = logits(params, x)
    chex.assert_shape(out, (5, 10))
    chex.assert_tree_all_finite(out)
    # Leading axes are kept, as for the linear model.
    chex.assert_trees_all_close(logits(params, x[None]), out[None], rtol=1e-5, atol=1e-5)


def test_cnn_parameters_do_not_grow_with_resolution_but_linear_ones_do():
    def count(name, size):  # shapes only: eval_shape runs no computation
        return models.parameter_count(jax.eval_shape(models.get(name, image_size=size).init, jax.random.key(0)))

    counts = {size: (count("cnn_gap", size), count("linear", size)) for size in (28, 56, 224)}
    assert counts[28][0] == counts[56][0] == counts[224][0]
    assert [counts[s][1] for s in (28, 56, 224)] == [s * s * 10 + 10 for s in (28, 56, 224)]


def test_multi_template_reductions():
    x, _ = batch(16)
    for reduce in ("logsumexp", "max"):
        model = models.get("templates", k=3, reduce=reduce)
        params = model.init(jax.random.key(1))
        dense = params["Dense_0"]
        scores = (x.reshape(16, -1) @ np.asarray(dense["kernel"]) + np.asarray(dense["bias"])).reshape(16, 10, 3)
        want = np.log(np.exp(scores).sum(-1)) if reduce == "logsumexp" else scores.max(-1)
        np.testing.assert_allclose(model.logits(params, x), want, rtol=1e-5, atol=1e-5)
    # One template per class is the linear model.
    one = models.get("templates", k=1)
    params = one.init(jax.random.key(2))
    as_linear = {"w": params["Dense_0"]["kernel"], "b": params["Dense_0"]["bias"]}
    np.testing.assert_allclose(one.logits(params, x), linear.logits(as_linear, x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="reduce"):
        models.get("templates", reduce="mean").init(jax.random.key(0))


def test_permuted_first_layer_sees_permuted_pixels_identically():
    x, _ = batch(16)
    permutation = jax.random.permutation(jax.random.key(3), 784)
    for name in ("linear", "mlp"):
        model = models.get(name)
        permuted = locality.with_permuted_first_layer(model, locality.FIRST_LAYER[name], permutation)
        key = jax.random.key(4)
        original = model.logits(model.init(key), x)
        moved = permuted.logits(permuted.init(key), transforms.permute_pixels(jnp.asarray(x), permutation))
        np.testing.assert_allclose(moved, original, rtol=1e-5, atol=1e-5)
    flat = np.asarray(transforms.permute_pixels(jnp.asarray(x), permutation)).reshape(16, -1)
    np.testing.assert_array_equal(flat, x.reshape(16, -1)[:, np.asarray(permutation)])


def test_upsampling_is_per_batch_and_memory_stays_bounded():
    x, _ = batch(3)
    big = transforms.resize(jnp.asarray(x), 8)
    chex.assert_shape(big, (3, 224, 224))
    np.testing.assert_allclose(big.mean((1, 2)), x.mean((1, 2)), rtol=0.02, atol=1e-3)
    # Compiling training at 224 px over all 60,000 images needs nowhere near the 12 GB a
    # materialised 60,000 × 224 × 224 float32 array would take.
    images = jax.ShapeDtypeStruct((60_000, 28, 28), jnp.uint8)
    labels = jax.ShapeDtypeStruct((60_000,), jnp.int32)
    compiled = train.train_seeds.lower(
        jax.random.split(jax.random.key(0), 2), images, labels, train.Hyperparams(0.01, 0.0),
        model=models.get("linear", image_size=224), task=tasks.CLASSIFICATION,
        config=train.TrainConfig(epochs=1), transform=functools.partial(transforms.resize, factor=8)).compile()
    materialised = 60_000 * 224 * 224 * 4
    assert compiled.memory_analysis().temp_size_in_bytes < materialised / 100


def test_every_model_has_one_name_and_a_title():
    assert set(tables.TITLES) == set(models.NAMES)
    for name in models.NAMES:  # shapes only (traced, not run): every model's numbers are tested on their own
        model = models.get(name, outputs=3)
        params = jax.eval_shape(model.init, jax.random.key(0))
        chex.assert_shape(jax.eval_shape(model.logits, params, jnp.zeros((2, 28, 28))), (2, 3))
    with pytest.raises(ValueError, match="Unknown model"):
        models.get("small CNN")


def test_a_preprocessed_model_maps_every_input_first():
    x, _ = batch(16)
    model = models.preprocessed(models.LINEAR, transforms.deskew)
    params = model.init(jax.random.key(5))
    assert jax.tree.all(jax.tree.map(np.array_equal, params, models.LINEAR.init(jax.random.key(5))))
    deskewed = np.asarray(transforms.deskew(jnp.asarray(x)), np.float64).reshape(16, -1)
    want = deskewed @ np.asarray(params["w"], np.float64) + np.asarray(params["b"], np.float64)
    np.testing.assert_allclose(model.logits(params, jnp.asarray(x)), want, rtol=1e-5, atol=1e-5)
