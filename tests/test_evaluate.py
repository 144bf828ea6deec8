"""The one evaluation path and the invariance metrics, against numpy loops on real test digits."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from realdata import batch, mnist
from test_transforms import _np_translate, _rotation, _skimage_rotate_translate, _skimage_warp

from mnist_linear import evaluate, invariance, linear, metrics, transforms


def _models(seeds=2):
    keys = jax.random.split(jax.random.key(0), seeds)
    return jax.vmap(lambda k: linear.init(k, scale=0.05))(keys)


def _numpy_logits(params, seed, x):
    """float64 logits of seed `seed` on float images `(N, 28, 28)`."""
    return x.reshape(len(x), -1) @ np.asarray(params["w"][seed], np.float64) + np.asarray(params["b"][seed])


@pytest.mark.parametrize("n, batch_size", [(10_000, 3000), (997, 100), (10_000, 10_000), (5, 7)])
def test_every_image_is_scored_whatever_the_chunking(n, batch_size):
    params = _models(3)
    test = mnist().test
    images, labels = test.images[:n], test.labels[:n]
    classes = evaluate.seed_outputs(params, jnp.asarray(images), apply=linear.logits, reduce=metrics.predict,
                                    batch_size=batch_size)
    chex.assert_shape(classes, (3, n))
    x = images.astype(np.float64) / 255
    for s in range(3):
        z = _numpy_logits(params, s, x)
        got, want = np.asarray(classes[s]), np.argmax(z, -1)
        # float32 against float64: only a near-tie may flip, the two classes' logits within float32 rounding.
        flipped = np.nonzero(got != want)[0]
        assert np.all(z[flipped, want[flipped]] - z[flipped, got[flipped]] < 1e-5), flipped
    one = evaluate.outputs(linear.logits, jax.tree.map(lambda p: p[1], params), jnp.asarray(images),
                           batch_size=batch_size)
    chex.assert_shape(one, (n, 10))
    np.testing.assert_allclose(one, _numpy_logits(params, 1, x), rtol=1e-5, atol=1e-5)  # 784-term float32 sums


@pytest.mark.parametrize("linear_transform", [False, True])
def test_shift_grid_predictions_and_metrics_match_a_loop(linear_transform):
    """Shifted images scored directly, or (linear_transform) through the templates shifted back: both
    against numpy's shifted images and float64 logits."""
    params = _models()
    test = mnist().test
    images, labels = test.images[:700], test.labels[:700]
    dxs, dys = transforms.offset_grid(3)
    preds = np.asarray(evaluate.grid_outputs(params, jnp.asarray(images), (dxs, dys), apply=linear.logits,
                                             transform=transforms.translate, reduce=metrics.predict,
                                             batch_size=300, points_at_once=5, linear_transform=linear_transform))
    chex.assert_shape(preds, (49, 2, 700))
    for o in (0, 24, 30):
        x = _np_translate(images.astype(np.float64) / 255, dxs[o], dys[o], "zeros")
        for s in range(2):
            np.testing.assert_array_equal(preds[o, s], np.argmax(_numpy_logits(params, s, x), -1))
    # The metrics, recomputed by hand on the same predictions: indices and masks, not offsets.
    centre = invariance.index((dxs, dys), (0, 0))
    assert centre == 24
    neighbours = [invariance.index((dxs, dys), p) for p in ((1, 0), (-1, 0), (0, 1), (0, -1))]
    assert sorted(neighbours) == [17, 23, 25, 31]
    change = np.mean([(preds[o] != preds[24]).mean(-1) for o in (23, 25, 17, 31)], 0)
    np.testing.assert_allclose(invariance.top1_change(preds, centre, neighbours), change)
    ring2 = [o for o in range(49) if abs(dxs[o]) <= 2 and abs(dys[o]) <= 2]
    want = [(preds[ring2, s] == labels).all(0).mean() for s in range(2)]
    mask = (np.abs(dxs) <= 2) & (np.abs(dys) <= 2)
    np.testing.assert_allclose(invariance.grid_accuracy(preds, labels, mask), want)
    with pytest.raises(ValueError, match="non-empty"):
        invariance.grid_accuracy(preds, labels, np.zeros(49, bool))
    # Worst-of-k: never above the accuracy at any point it includes; over the whole grid, the grid accuracy.
    rng = np.random.default_rng(0)
    for points in (rng.choice(49, 10, replace=False), np.arange(49)):
        worst = invariance.worst_of(preds[points], labels)
        chex.assert_shape(worst, (2,))
        assert all((worst <= (preds[o] == labels).mean(-1)).all() for o in points)
    np.testing.assert_allclose(invariance.worst_of(preds, labels), invariance.grid_accuracy(preds, labels, np.ones(49, bool)))
    with pytest.raises(ValueError, match="occurs 0 times"):
        invariance.index((dxs, dys), (4, 0))


@pytest.mark.parametrize("linear_transform", [False, True])
def test_a_rotation_grid_runs_through_the_same_sweep(linear_transform):
    """−30°…30° through `grid_outputs`, raw logits, against scikit-image's warp and numpy; with
    `linear_transform`, the bilinear map's transpose applied to the templates instead."""
    params = _models()
    images = mnist().test.images[:300]
    angles = np.linspace(-30, 30, 7, dtype=np.float32)
    logits = evaluate.grid_outputs(params, jnp.asarray(images), (angles,), apply=linear.logits,
                                   transform=transforms.rotate, batch_size=128, points_at_once=3,
                                   linear_transform=linear_transform)
    chex.assert_shape(logits, (7, 2, 300, 10))
    for p in (0, 3, 6):
        x = _skimage_warp(images.astype(np.float64) / 255, _rotation(angles[p]))
        for s in range(2):
            np.testing.assert_allclose(logits[p, s], _numpy_logits(params, s, x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(logits[3, 0], _numpy_logits(params, 0, images.astype(np.float64) / 255),
                               rtol=1e-5, atol=1e-5)  # 0° is the identity


def test_templates_moved_by_the_transpose_equal_the_maps_of_every_image():
    """Engstrom et al.'s rotation × translation grid, a scaling and a pixel permutation: the linear model's
    logits through the templates equal those of the transformed images to float32 rounding. Only the
    linear model over a shared grid may ask for it."""
    params = _models(3)
    images = jnp.asarray(mnist().test.images[:400])
    permutation = jax.random.permutation(jax.random.key(1), 784)
    cases = [(transforms.rotate_translate, transforms.spatial_grid(3.0, 30.0, (3, 3, 5))),
             (transforms.scale, (np.array([0.5, 0.9, 1.3], np.float32),)),
             (lambda x, _: transforms.permute_pixels(x, permutation), (np.zeros(2, np.float32),)),
             (functools.partial(transforms.translate, fill="wrap"), transforms.offset_grid(2))]
    for transform, grid in cases:
        direct, moved = (evaluate.grid_outputs(params, images, jax.device_put(grid), apply=linear.logits,
                                               transform=transform, batch_size=150, linear_transform=flag)
                         for flag in (False, True))
        np.testing.assert_allclose(moved, direct, rtol=1e-5, atol=2e-5)
    one = evaluate.grid_outputs(params, images[7], jax.device_put(grid), apply=linear.logits, transform=transform,
                                linear_transform=True)  # a single (H, W) image is N = 1
    np.testing.assert_allclose(one[:, :, 0], moved[:, :, 7], rtol=1e-5, atol=2e-5)
    larger = jax.vmap(lambda k: linear.init(k, num_pixels=56 * 56, scale=0.05))(jax.random.split(jax.random.key(2), 2))
    upsampled = [evaluate.grid_outputs(larger, images, (jnp.zeros(1),), apply=linear.logits, linear_transform=flag,
                                       transform=lambda x, _: transforms.resize(x, 2)) for flag in (False, True)]
    np.testing.assert_allclose(upsampled[1], upsampled[0], rtol=1e-5, atol=2e-5)  # a map to another size
    with pytest.raises(ValueError, match="takes 784 pixels"):
        evaluate.grid_outputs(params, images, (jnp.zeros(2),), apply=linear.logits, linear_transform=True,
                              transform=lambda x, _: transforms.resize(x, 2))  # 56 × 56 images for a 28 × 28 model
    with pytest.raises(ValueError, match="needs apply=linear.logits"):
        evaluate.grid_outputs(params, images, (jnp.zeros(2),), apply=lambda p, x: linear.logits(p, x),
                              transform=transforms.rotate, linear_transform=True)
    with pytest.raises(ValueError, match="per_example=False"):
        evaluate.grid_outputs(params, images, (jnp.zeros((2, 400)),), apply=linear.logits,
                              transform=transforms.each(transforms.rotate), per_example=True, linear_transform=True)


def test_per_image_parameters_give_the_consistency_draws():
    params = _models()
    images = jnp.asarray(mnist().test.images[:500])
    draws = [transforms.random_offsets(k, 500, 3) for k in jax.random.split(jax.random.key(5))]
    grid = tuple(jnp.stack([d[i] for d in draws]) for i in (0, 1))  # (2, N) each
    paired = np.asarray(evaluate.grid_outputs(params, images, grid, apply=linear.logits,
                                              transform=transforms.each(transforms.translate),
                                              reduce=metrics.predict, batch_size=200, per_example=True))
    chex.assert_shape(paired, (2, 2, 500))
    for draw, (dx, dy) in enumerate(draws):
        moved = np.stack([_np_translate(np.asarray(im, np.float64) / 255, int(i), int(j), "zeros")
                          for im, i, j in zip(images, dx, dy)])
        for s in range(2):
            np.testing.assert_array_equal(paired[draw, s], np.argmax(_numpy_logits(params, s, moved), -1))
    np.testing.assert_allclose(invariance.consistency(paired), (paired[0] == paired[1]).mean(-1))
    assert 0 < invariance.consistency(paired).min() < 1


def _least_squares_models(ridges=(1.0, 1e4)):
    """Linear classifiers fitted in closed form (ridge regression on one-hot labels, numpy), one per ridge:
    accurate enough that some digits survive a small spatial grid and some do not."""
    x, y = batch(3000)
    a = np.c_[x.reshape(len(x), -1), np.ones(len(x))].astype(np.float64)
    fits = [np.linalg.solve(a.T @ a + r * np.eye(a.shape[1]), a.T @ np.eye(10)[y]) for r in ridges]
    return {"w": jnp.asarray(np.stack([f[:-1] for f in fits]), jnp.float32),
            "b": jnp.asarray(np.stack([f[-1] for f in fits]), jnp.float32)}


@pytest.mark.parametrize("batch_size, points_at_once", [(400, 45), (64, 4), (7, 1)])
def test_grid_worst_case_equals_scoring_every_point(batch_size, points_at_once):
    params = _models(1)
    params = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), _least_squares_models(), params)  # S = 3
    test = mnist().test
    images, labels = jnp.asarray(test.images[:400]), test.labels[:400]
    grid = transforms.spatial_grid(1.0, 10.0, (3, 3, 5))  # P = 45
    right, scored = evaluate.grid_worst_case(params, images, jnp.asarray(labels), jax.device_put(grid),
                                             apply=linear.logits, transform=transforms.rotate_translate,
                                             batch_size=batch_size, points_at_once=points_at_once)
    chex.assert_shape(right, (3, 400))
    chex.assert_shape(scored, (400,))
    classes = np.asarray(evaluate.grid_outputs(params, images, jax.device_put(grid), apply=linear.logits,
                                               transform=transforms.rotate_translate, reduce=metrics.predict))
    everywhere = (classes == labels).all(0)  # (S, N)
    np.testing.assert_array_equal(right, everywhere)
    assert (0.05 < everywhere[:2].mean(-1)).all() and everywhere[2].mean() < 0.05  # some survive, some do not
    # An image is scored block by block until every model has failed somewhere: the first such block.
    failed_by = np.logical_or.accumulate(classes != labels, axis=0).all(1)  # (P, N): every model failed by p
    first = np.where(failed_by.any(0), failed_by.argmax(0), len(grid[0]))
    want = np.minimum(points_at_once * (first // points_at_once + 1), len(grid[0]))
    np.testing.assert_array_equal(scored, want)
    assert (np.asarray(scored)[everywhere.any(0)] == 45).all()
    # The same by scikit-image and numpy on the first 60 images (float64: a near-tie may flip one).
    want = np.ones((3, 60), bool)
    for point in zip(*grid):
        x = np.stack([_skimage_rotate_translate(im, *point) for im in test.images[:60] / 255])
        want &= np.stack([np.argmax(_numpy_logits(params, s, x), -1) == labels[:60] for s in range(3)])
    assert (np.asarray(right)[:, :60] != want).sum() <= 1


def test_grid_worst_case_checks_its_labels():
    params, images = _models(), jnp.asarray(mnist().test.images[:8])
    grid = jax.device_put(transforms.spatial_grid(1.0, 10.0, (1, 1, 3)))
    run = lambda labels: evaluate.grid_worst_case(  # noqa: E731
        params, images, labels, grid, apply=linear.logits, transform=transforms.rotate_translate)
    with pytest.raises(TypeError, match="integer class indices"):
        run(jnp.zeros(8))
    with pytest.raises(ValueError, match="one per image"):
        run(jnp.zeros(7, jnp.int32))
    with pytest.raises(ValueError, match=r"must be in \[0, 10\)"):
        run(jnp.full(8, 10, jnp.int32))
    with pytest.raises(ValueError, match="points_at_once must be an int"):
        evaluate.grid_worst_case(params, images, jnp.zeros(8, jnp.int32), grid, apply=linear.logits,
                                 transform=transforms.rotate_translate, points_at_once=0)
    with pytest.raises(ValueError, match=r"grid arrays must be \(P,\) each"):
        evaluate.grid_worst_case(params, images, jnp.zeros(8, jnp.int32), tuple(g[:, None] for g in grid),
                                 apply=linear.logits, transform=transforms.rotate_translate)


def test_test_time_augmentation_averages_outputs_over_its_grid():
    params = jax.tree.map(lambda p: p[0], _models(1))
    x, _ = batch(10)
    dxs, dys = transforms.offset_grid(1)
    tta = invariance.averaged_over(linear.logits, transforms.translate, (dxs, dys))
    want = np.mean([linear.logits(params, _np_translate(x, dx, dy, "zeros")) for dx, dy in zip(dxs, dys)], 0)
    np.testing.assert_allclose(tta(params, x), want, rtol=1e-5, atol=1e-6)
