"""Translations as pure ops, and the invariance metrics computed from them, against numpy."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized
from realdata import batch, mnist

from mnist_linear import invariance, linear, metrics, models, shifts, train


def _np_translate(images, dx, dy, fill):
    """Independent reference: explicit index arithmetic."""
    out = np.zeros_like(images)
    h, w = images.shape[-2:]
    for r in range(h):
        for c in range(w):
            sr, sc = r - dy, c - dx
            if fill == "wrap":
                out[..., r, c] = images[..., sr % h, sc % w]
            elif 0 <= sr < h and 0 <= sc < w:
                out[..., r, c] = images[..., sr, sc]
    return out


class TranslateTest(chex.TestCase, parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_sign_convention_on_a_one_pixel_image(self):
        image = jnp.zeros((28, 28)).at[10, 5].set(1.0)
        for fill in shifts.FILLS:
            moved = self.variant(lambda x: shifts.translate(x, 3, -2, fill))(image)
            np.testing.assert_array_equal(np.argwhere(np.asarray(moved)), [[8, 8]])  # right 3, up 2

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters("zeros", "wrap")
    def test_matches_index_arithmetic_on_real_digits(self, fill):
        x, _ = batch(8)
        for dx, dy in [(0, 0), (4, 0), (0, -4), (-3, 2), (27, -27), (-13, 15)]:
            got = self.variant(lambda im: shifts.translate(im, dx, dy, fill))(x)
            chex.assert_shape(got, x.shape)
            np.testing.assert_array_equal(got, _np_translate(x, dx, dy, fill))

    def test_identity_and_dtype(self):
        images = mnist().test.images[:16]
        out = shifts.translate(jnp.asarray(images), 0, 0)
        assert out.dtype == jnp.uint8
        np.testing.assert_array_equal(out, images)

    def test_round_trip_on_the_unclipped_region(self):
        x, _ = batch(16)
        for dx, dy in [(2, 3), (-4, 1), (5, -5)]:
            back = np.asarray(shifts.translate(shifts.translate(x, dx, dy), -dx, -dy))
            rows = slice(max(0, -dy), 28 - max(0, dy))  # pixels that never left the canvas
            cols = slice(max(0, -dx), 28 - max(0, dx))
            np.testing.assert_array_equal(back[:, rows, cols], x[:, rows, cols])
            outside = np.ones((28, 28), bool)
            outside[rows, cols] = False
            assert (back[:, outside] == 0).all()

    def test_wrap_is_invertible_and_keeps_the_pixel_sum(self):
        x, _ = batch(16)
        for dx, dy in [(2, 3), (-27, 14), (13, -1)]:
            moved = shifts.translate(x, dx, dy, "wrap")
            np.testing.assert_array_equal(shifts.translate(moved, -dx, -dy, "wrap"), x)
            np.testing.assert_allclose(np.asarray(moved).sum((1, 2)), x.sum((1, 2)), rtol=1e-6)

    def test_offsets_as_large_as_the_image_are_refused(self):
        x, _ = batch(2)
        for dx, dy in [(28, 0), (0, -28), (40, 3)]:
            with pytest.raises(ValueError, match="not smaller than the image size 28"):
                shifts.translate(x, dx, dy)
        with pytest.raises(ValueError, match="fill"):
            shifts.translate(x, 1, 1, "reflect")
        with pytest.raises(ValueError, match=r"\[-27, 27\]"):
            shifts.check_offsets(np.array([0, 3, -30]), 28)

    def test_traced_offsets_serve_a_whole_grid(self):
        x, _ = batch(4)
        dxs, dys = shifts.offset_grid(2)
        chex.assert_shape(dxs, (25,))
        assert (dxs[:5] == [-2, -1, 0, 1, 2]).all() and (dys[:5] == -2).all()
        traced = chex.assert_max_traces(lambda dx, dy: shifts.translate(x, dx, dy), n=1)
        out = jax.jit(jax.vmap(traced))(dxs, dys)
        for o in (0, 7, 24):
            np.testing.assert_array_equal(out[o], _np_translate(x, dxs[o], dys[o], "zeros"))

    def test_random_shift_uses_its_key_per_image(self):
        x, _ = batch(64)
        key = jax.random.key(0)
        a = shifts.random_shift(key, x, 2)
        chex.assert_trees_all_equal(a, shifts.random_shift(key, x, 2))
        dx, dy = shifts.random_offsets(key, 64, 2)
        assert set(np.unique(dx)) == set(range(-2, 3)) and not np.array_equal(dx, dy)
        for i in (0, 31, 63):
            np.testing.assert_array_equal(a[i], _np_translate(x[i], int(dx[i]), int(dy[i]), "zeros"))


def _models(seeds=2):
    keys = jax.random.split(jax.random.key(0), seeds)
    return jax.vmap(lambda k: linear.init(k, scale=0.05))(keys)


def test_grid_predictions_match_a_loop():
    params = _models()
    test = mnist().test
    images, labels = test.images[:700], test.labels[:700]
    dxs, dys = shifts.offset_grid(3)
    preds = np.asarray(invariance.grid_predictions(params, jnp.asarray(images), dxs, dys,
                                                   logits_fn=linear.logits, batch_size=300))
    chex.assert_shape(preds, (49, 2, 700))
    for o in (0, 24, 30):
        for s in range(2):
            x = _np_translate(images.astype(np.float64) / 255, dxs[o], dys[o], "zeros").reshape(700, -1)
            want = np.argmax(x @ np.asarray(params["w"][s]) + np.asarray(params["b"][s]), -1)
            np.testing.assert_array_equal(preds[o, s], want)
    # The metrics, recomputed by hand on the same predictions.
    centre = preds[24]
    change = np.mean([(preds[o] != centre).mean(-1) for o in (23, 25, 17, 31)], 0)
    np.testing.assert_allclose(invariance.top1_change(preds, dxs, dys), change)
    ring2 = [o for o in range(49) if abs(dxs[o]) <= 2 and abs(dys[o]) <= 2]
    assert len(ring2) == 25
    want = [(preds[ring2, s] == labels).all(0).mean() for s in range(2)]
    np.testing.assert_allclose(invariance.grid_accuracy(preds, labels, dxs, dys, 2), want)
    with pytest.raises(ValueError, match="does not cover"):
        invariance.grid_accuracy(preds, labels, dxs, dys, 4)


def test_consistency_draws_two_independent_shifts():
    params = _models()
    images = jnp.asarray(mnist().test.images[:500])
    key = jax.random.key(5)
    paired = np.asarray(invariance.paired_shift_predictions(params, images, key, logits_fn=linear.logits,
                                                            max_shift=3, batch_size=200))
    chex.assert_shape(paired, (2, 2, 500))
    first, second = jax.random.split(key)
    for draw, k in enumerate((first, second)):
        dx, dy = shifts.random_offsets(k, 500, 3)
        moved = shifts.translate_each(images, dx, dy).astype(jnp.float32) / 255
        for seed in range(2):
            seed_params = jax.tree.map(lambda p: p[seed], params)
            np.testing.assert_array_equal(paired[draw, seed], np.argmax(linear.logits(seed_params, moved), -1))
    np.testing.assert_allclose(invariance.consistency(paired), (paired[0] == paired[1]).mean(-1))
    assert 0 < invariance.consistency(paired).min() < 1


def test_test_time_augmentation_averages_logits():
    params = jax.tree.map(lambda p: p[0], _models(1))
    x, _ = batch(10)
    dxs, dys = shifts.offset_grid(1)
    tta = invariance.averaged_over_shifts(linear.logits, dxs, dys)
    want = np.mean([linear.logits(params, _np_translate(x, dx, dy, "zeros")) for dx, dy in zip(dxs, dys)], 0)
    np.testing.assert_allclose(tta(params, x), want, rtol=1e-5, atol=1e-6)


def test_train_shifted_equals_training_on_shifted_data():
    """Training at a fixed offset inside the vmap equals training alone on pre-shifted images."""
    split = mnist().train
    images, labels = jnp.asarray(split.images[:1000]), jnp.asarray(split.labels[:1000])
    keys = jax.random.split(jax.random.key(0), 2)
    config = train.TrainConfig(epochs=1, batch_size=100)
    hp = train.Hyperparams(jnp.float32(0.3), jnp.float32(0.0))
    params, _ = invariance.train_shifted(keys, images, labels, hp, np.array([0, 3]), np.array([0, -1]),
                                         model=models.LINEAR, loss_fn=metrics.cross_entropy, config=config)
    chex.assert_shape(params["w"], (2, 2, 784, 10))
    alone, _ = train.train(keys[1], shifts.translate(images, 3, -1), labels, hp, model=models.LINEAR,
                           loss_fn=metrics.cross_entropy, config=config)
    chex.assert_trees_all_close(jax.tree.map(lambda p: p[1, 1], params), alone, rtol=1e-5, atol=1e-6)
