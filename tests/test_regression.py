"""Regression on real MNIST: the ridge solution, the targets' geometry, Morpho-MNIST's measures, the scores."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage
import scipy.stats
from realdata import mnist
from skimage import draw, metrics as skmetrics, morphology, transform

from mnist_linear import data, evaluate, metrics, models, regression, tasks, train, transforms


def _digits(n, start=0):
    split = mnist().train
    return data.Split(split.images[start:start + n], split.labels[start:start + n])


def test_the_one_loop_with_mse_and_l2_reaches_the_ridge_solution():
    # Full-batch heavy-ball GD on loss (1/N)·Σ‖Xw + b − y‖² with decay wd·θ added to the gradient
    # (optax.add_decayed_weights, on w and b) has its fixed point where
    # (X̃ᵀX̃ + (N·wd/2)·I) θ = X̃ᵀy, X̃ = [X, 1]: the ridge solution, solved here in float64.
    n, wd = 1000, 1e-2
    images = _digits(n).images
    y = np.asarray(transforms.centre_of_mass(images), np.float64)
    y = (y - y.mean(0)) / y.std(0)
    config = train.TrainConfig(epochs=4000, batch_size=n, momentum=0.9, schedule="constant")
    params, log = train.train_seeds(
        jax.random.split(jax.random.key(0), 1), jnp.asarray(images), jnp.asarray(y, jnp.float32),
        train.Hyperparams(jnp.float32(0.02), jnp.float32(wd)), model=models.get("linear", 28, 2),
        task=regression.PROBLEMS["keypoint"].task, config=config)
    x = np.concatenate([images.reshape(n, -1) / 255.0, np.ones((n, 1))], axis=1)
    ridge = np.linalg.solve(x.T @ x + n * wd / 2 * np.eye(x.shape[1]), x.T @ y)
    learned = np.concatenate([np.asarray(params["w"][0], np.float64), np.asarray(params["b"][0])[None]], axis=0)
    chex.assert_shape(learned, ridge.shape)
    # Stated tolerance: float32 training after 4000 steps, 1e-3 of the largest weight (measured: 3e-5).
    assert np.abs(learned - ridge).max() <= 1e-3 * np.abs(ridge).max()
    np.testing.assert_allclose(x @ learned, x @ ridge, rtol=0, atol=1e-3 * np.abs(x @ ridge).max())
    assert not bool(log.non_finite[0])


# --- keypoint ---------------------------------------------------------------------------------


def test_centre_of_mass_agrees_with_scipy_and_moves_exactly_with_the_offset():
    split = _digits(300)
    com = np.asarray(transforms.centre_of_mass(split.images))
    reference = np.array([scipy.ndimage.center_of_mass(image.astype(np.float64))[::-1] for image in split.images])
    np.testing.assert_allclose(com, reference, atol=1e-4)
    rng = np.random.default_rng(0)
    dx, dy = rng.integers(0, 13, 300), rng.integers(0, 13, 300)
    pasted = regression.paste(split.images, dx, dy, 40)
    chex.assert_shape(pasted, (300, 40, 40))
    assert pasted.dtype == jnp.uint8
    np.testing.assert_array_equal(np.asarray(pasted).sum(axis=(1, 2)), split.images.astype(np.int64).sum(axis=(1, 2)))
    moved = np.asarray(transforms.centre_of_mass(pasted)) - com
    np.testing.assert_allclose(moved, np.stack([dx, dy], axis=1), atol=1e-4)


def test_keypoints_are_deterministic_for_a_key_and_on_the_canvas():
    split = _digits(500)
    a, b = regression.keypoints(jax.random.key(3), split), regression.keypoints(jax.random.key(3), split)
    c = regression.keypoints(jax.random.key(4), split)
    np.testing.assert_array_equal(np.asarray(a.images), np.asarray(b.images))
    np.testing.assert_array_equal(np.asarray(a.targets), np.asarray(b.targets))
    assert not np.array_equal(np.asarray(a.targets), np.asarray(c.targets))
    chex.assert_shape(a.targets, (500, 2))
    chex.assert_type(a.targets, jnp.float32)
    # Offsets span the canvas: the centres cover nearly the whole range the 12 px of slack allow.
    corner = np.asarray(transforms.centre_of_mass(split.images))
    offset = np.asarray(a.targets) - corner
    np.testing.assert_allclose(offset, np.round(offset), atol=1e-3)
    assert np.round(offset).min() == 0 and np.round(offset).max() == 12
    np.testing.assert_array_equal(a.labels, split.labels)


def test_paste_and_keypoints_refuse_what_they_cannot_do():
    images = _digits(4).images
    with pytest.raises(ValueError, match="dx must be in"):
        regression.paste(images, np.array([0, 0, 13, 0]), np.zeros(4, int), 40)
    with pytest.raises(ValueError, match="smaller than"):
        regression.paste(images, np.zeros(4, int), np.zeros(4, int), 20)
    blank = images.copy()
    blank[2] = 0
    with pytest.raises(ValueError, match="1 blank images .first at index 2"):
        regression.keypoints(jax.random.key(0), data.Split(blank, np.zeros(4, np.int32)))


# --- quality ----------------------------------------------------------------------------------


def test_gaussian_blur_matches_scipy():
    images = _digits(6).images.astype(np.float32) / 255.0
    sigmas = np.array([0.0, 0.3, 0.7, 1.0, 1.6, 2.0], np.float32)
    blurred = np.asarray(regression.gaussian_blur(jnp.asarray(images), jnp.asarray(sigmas)))
    for image, sigma, ours in zip(images, sigmas, blurred):
        expected = image if sigma == 0 else scipy.ndimage.gaussian_filter(
            image.astype(np.float64), float(sigma), mode="constant", truncate=27 / float(sigma))
        np.testing.assert_allclose(ours, expected, atol=2e-6)


def test_more_blur_or_noise_never_raises_the_score_and_degrades_the_image():
    blur, noise = np.meshgrid(np.linspace(0, regression.MAX_BLUR, 21), np.linspace(0, regression.MAX_NOISE, 21))
    score = regression.quality_score(blur, noise)
    assert score[0, 0] == 10 and score[-1, -1] == 0
    assert (np.diff(score, axis=0) < 0).all() and (np.diff(score, axis=1) < 0).all()
    # The image itself: PSNR against the clean image (scikit-image) falls as either amount grows.
    images = _digits(200).images
    clean = images.astype(np.float64) / 255.0

    def psnr(b, s):
        out = regression.degrade(jax.random.key(0), jnp.asarray(images), jnp.full(200, b), jnp.full(200, s))
        return skmetrics.peak_signal_noise_ratio(clean, np.asarray(out) / 255.0, data_range=1.0)  # over all 200

    by_blur = [psnr(b, 0.0) for b in (0.5, 1.0, 1.5, 2.0)]  # below 0.5 px, uint8 rounding undoes the blur
    by_noise = [psnr(0.0, s) for s in (0.05, 0.1, 0.2, 0.4)]
    assert np.all(np.diff(by_blur) < 0) and np.all(np.diff(by_noise) < 0), (by_blur, by_noise)


def test_quality_is_deterministic_and_keeps_a_target_axis():
    split = _digits(300)
    a, b = regression.quality(jax.random.key(1), split), regression.quality(jax.random.key(1), split)
    c = regression.quality(jax.random.key(2), split)
    np.testing.assert_array_equal(np.asarray(a.images), np.asarray(b.images))
    np.testing.assert_array_equal(np.asarray(a.targets), np.asarray(b.targets))
    assert not np.array_equal(np.asarray(a.targets), np.asarray(c.targets))
    chex.assert_shape(a.targets, (300, 1))
    assert a.images.dtype == jnp.uint8
    t = np.asarray(a.targets)
    assert 0 <= t.min() and t.max() <= 10 and t.std() > 1
    # Each target is its own image's degradation: the draws the docstring names, rebuilt with scipy's blur.
    k_blur, k_noise, k_pixels = jax.random.split(jax.random.key(1), 3)
    blur = regression.MAX_BLUR * np.asarray(jax.random.uniform(k_blur, (300,)), np.float64)
    noise = regression.MAX_NOISE * np.asarray(jax.random.uniform(k_noise, (300,)), np.float64)
    np.testing.assert_allclose(t[:, 0], 10 * (1 - (blur / regression.MAX_BLUR + noise / regression.MAX_NOISE) / 2),
                               rtol=0, atol=5e-6)  # float32 arithmetic on scores up to 10
    blurred = np.stack([scipy.ndimage.gaussian_filter(image / 255, s, mode="constant", truncate=27 / s)
                        for image, s in zip(np.asarray(split.images, np.float64), blur)])
    noisy = blurred + noise[:, None, None] * np.asarray(jax.random.normal(jax.random.fold_in(k_pixels, 0), (300, 28, 28)))
    want = np.round(255 * np.clip(noisy, 0, 1))
    assert np.abs(np.asarray(a.images, np.float64) - want).max() <= 1  # float32 against float64: one grey level
    assert (np.asarray(a.images) == want).mean() > 0.99
    with pytest.raises(ValueError, match="must be > 0"):
        regression.quality(jax.random.key(1), split, max_noise=0.0)


# --- morphometry ------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [2, 3, 4, 5])
def test_thickness_of_a_drawn_bar_is_its_width(width):
    image = np.zeros((28, 28), np.uint8)
    image[4:24, 12:12 + width] = 255
    thickness, slant = regression.measure(image)
    assert abs(thickness - width) <= 0.05 * width
    assert abs(slant) < 1e-6


@pytest.mark.parametrize("angle", [-0.4, -0.2, 0.0, 0.2, 0.4])
def test_slant_of_a_sheared_stroke_is_its_angle(angle):
    # A stroke 3 px wide from row 4 to row 24, its top leaning right by `angle` (rad) from vertical.
    rows = np.array([4.0, 4.0, 24.0, 24.0])
    columns = 14 - np.tan(angle) * (rows - 14) + np.array([-1.5, 1.5, 1.5, -1.5])
    image = np.zeros((28, 28), np.uint8)
    rr, cc = draw.polygon(rows, columns, image.shape)
    image[rr, cc] = 255
    _, slant = regression.measure(image)
    assert abs(slant - angle) <= 0.02


def test_thickness_agrees_with_the_papers_medial_axis_on_real_digits():
    # Morpho-MNIST takes the skeleton from medial_axis; ours from thinning (skeletonize), 30× faster.
    images = _digits(150).images
    ours = regression.morphometry(images, cache=False)[:, 0]
    papers = []
    for image in images:
        hires = (255.0 * transform.pyramid_expand(image, upscale=4, order=3)).astype(np.uint8)
        binary = hires >= hires.min() + (int(hires.max()) - int(hires.min())) * 0.5
        skeleton, distance = morphology.medial_axis(binary, return_distance=True)
        papers.append(2.0 * distance[skeleton].mean() / 4)
    papers = np.array(papers)
    assert abs(ours.mean() - papers.mean()) < 0.05
    assert np.abs(ours - papers).mean() < 0.1
    assert scipy.stats.pearsonr(ours, papers)[0] > 0.98


def test_measure_refuses_what_it_cannot_measure():
    with pytest.raises(TypeError, match="uint8"):
        regression.measure(_digits(1).images[0].astype(np.float32) / 255)
    with pytest.raises(ValueError, match="blank"):
        regression.measure(np.zeros((28, 28), np.uint8))


def test_morphometry_is_cached_by_the_images(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    images = _digits(20).images
    first = regression.morphometry(images)
    chex.assert_shape(first, (20, 2))
    monkeypatch.setattr(regression, "measure", lambda image: pytest.fail("measured again"))
    np.testing.assert_array_equal(regression.morphometry(images), first)
    with pytest.raises(TypeError, match="uint8"):
        regression.morphometry(images.astype(np.float32) / 255)


# --- scores, standardisation, shapes ----------------------------------------------------------


def test_scores_against_closed_forms():
    rng = np.random.default_rng(0)
    x = rng.normal(size=500)
    y = np.stack([2 * x + rng.normal(size=500), -x + 0.1 * rng.normal(size=500)], axis=1)
    fits = [scipy.stats.linregress(x, y[:, t]) for t in range(2)]
    predicted = np.stack([f.intercept + f.slope * x for f in fits], axis=1)
    scored = regression.scores(predicted[None], y)  # a leading seed axis
    chex.assert_shape(scored["r2"], (1, 2))
    # An least-squares line's R² is the squared correlation.
    np.testing.assert_allclose(scored["r2"][0], [f.rvalue ** 2 for f in fits], rtol=1e-10)
    np.testing.assert_allclose(scored["mae"][0], np.mean(np.abs(predicted - y), axis=0))
    np.testing.assert_allclose(scored["rmse"][0], np.sqrt(np.mean((predicted - y) ** 2, axis=0)))
    np.testing.assert_allclose(regression.scores(np.broadcast_to(y.mean(0), y.shape), y)["r2"], 0.0, atol=1e-12)
    with pytest.raises(ValueError, match=r"\(N, T\)"):
        regression.scores(predicted[:, 0], y)


def test_standardisation_round_trips_and_refuses_a_constant_target():
    y = np.random.default_rng(1).normal(3.0, 2.0, size=(400, 2))
    scale = regression.Standardisation.of(y)
    z = scale.apply(y)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(z.std(0), 1, atol=1e-6)
    np.testing.assert_allclose(scale.invert(z), y, atol=1e-5)
    with pytest.raises(ValueError, match="constant"):
        regression.Standardisation.of(np.c_[y[:, 0], np.ones(400)])


def test_a_single_target_keeps_its_axis_everywhere():
    split = regression.quality(jax.random.key(0), _digits(300))
    task = regression.PROBLEMS["quality"].task
    model = models.get("linear", 28, 1)
    params, _ = train.train_seeds(jax.random.split(jax.random.key(0), 2), split.images, split.targets / 10,
                                  train.Hyperparams(jnp.float32(0.01), jnp.float32(0.0)), model=model, task=task,
                                  config=train.TrainConfig(epochs=1, batch_size=100))
    outputs = evaluate.seed_outputs(params, split.images, apply=model.logits, reduce=task.reduce)
    chex.assert_shape(outputs, (2, 300, 1))
    chex.assert_shape(regression.scores(outputs, split.targets)["r2"], (2, 1))
    with pytest.raises(ValueError, match="a single target is a column"):
        metrics.mean_squared_error(outputs[0, :, 0], split.targets[:, 0])
    with pytest.raises(ValueError, match=r"expected \(N, 1\)"):
        train.train_seeds(jax.random.split(jax.random.key(0), 2), split.images, split.targets[:, 0],
                          train.Hyperparams(0.01, 0.0), model=model, task=task,
                          config=train.TrainConfig(epochs=1, batch_size=100))


def test_a_regression_task_needs_targets_on_its_split():
    with pytest.raises(ValueError, match="no regression targets"):
        tasks.regression("t", 1).targets(_digits(10))
