"""Every input map against an independent reference: index arithmetic, closed forms, scikit-image."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from absl.testing import parameterized
from realdata import batch, mnist

from skimage import transform as sk_transform

from mnist_linear import transforms


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
        for fill in transforms.FILLS:
            moved = self.variant(lambda x: transforms.translate(x, 3, -2, fill))(image)
            np.testing.assert_array_equal(np.argwhere(np.asarray(moved)), [[8, 8]])  # right 3, up 2

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters("zeros", "wrap")
    def test_matches_index_arithmetic_on_real_digits(self, fill):
        x, _ = batch(8)
        for dx, dy in [(0, 0), (4, 0), (0, -4), (-3, 2), (27, -27), (-13, 15)]:
            got = self.variant(lambda im: transforms.translate(im, dx, dy, fill))(x)
            chex.assert_shape(got, x.shape)
            np.testing.assert_array_equal(got, _np_translate(x, dx, dy, fill))

    def test_identity_and_dtype(self):
        images = mnist().test.images[:16]
        out = transforms.translate(jnp.asarray(images), 0, 0)
        assert out.dtype == jnp.uint8
        np.testing.assert_array_equal(out, images)

    def test_round_trip_on_the_unclipped_region(self):
        x, _ = batch(16)
        for dx, dy in [(2, 3), (-4, 1), (5, -5)]:
            back = np.asarray(transforms.translate(transforms.translate(x, dx, dy), -dx, -dy))
            rows = slice(max(0, -dy), 28 - max(0, dy))  # pixels that never left the canvas
            cols = slice(max(0, -dx), 28 - max(0, dx))
            np.testing.assert_array_equal(back[:, rows, cols], x[:, rows, cols])
            outside = np.ones((28, 28), bool)
            outside[rows, cols] = False
            assert (back[:, outside] == 0).all()

    def test_wrap_is_invertible_and_keeps_the_pixel_sum(self):
        x, _ = batch(16)
        for dx, dy in [(2, 3), (-27, 14), (13, -1)]:
            moved = transforms.translate(x, dx, dy, "wrap")
            np.testing.assert_array_equal(transforms.translate(moved, -dx, -dy, "wrap"), x)
            np.testing.assert_allclose(np.asarray(moved).sum((1, 2)), x.sum((1, 2)), rtol=1e-6)

    def test_offsets_as_large_as_the_image_are_refused(self):
        x, _ = batch(2)
        for dx, dy in [(28, 0), (0, -28), (40, 3)]:
            with pytest.raises(ValueError, match="not smaller than the image size 28"):
                transforms.translate(x, dx, dy)
        with pytest.raises(ValueError, match="fill"):
            transforms.translate(x, 1, 1, "reflect")
        with pytest.raises(ValueError, match=r"\[-27, 27\]"):
            transforms.check_offsets(np.array([0, 3, -30]), 28)

    def test_traced_offsets_serve_a_whole_grid(self):
        x, _ = batch(4)
        dxs, dys = transforms.offset_grid(2)
        chex.assert_shape(dxs, (25,))
        assert (dxs[:5] == [-2, -1, 0, 1, 2]).all() and (dys[:5] == -2).all()
        traced = chex.assert_max_traces(lambda dx, dy: transforms.translate(x, dx, dy), n=1)
        out = jax.jit(jax.vmap(traced))(dxs, dys)
        for o in (0, 7, 24):
            np.testing.assert_array_equal(out[o], _np_translate(x, dxs[o], dys[o], "zeros"))

    def test_random_shift_uses_its_key_per_image(self):
        x, _ = batch(64)
        key = jax.random.key(0)
        a = transforms.random_shift(key, x, 2)
        chex.assert_trees_all_equal(a, transforms.random_shift(key, x, 2))
        dx, dy = transforms.random_offsets(key, 64, 2)
        assert set(np.unique(dx)) == set(range(-2, 3)) and not np.array_equal(dx, dy)
        for i in (0, 31, 63):
            np.testing.assert_array_equal(a[i], _np_translate(x[i], int(dx[i]), int(dy[i]), "zeros"))

    def test_both_fills_in_one_traced_program(self):
        x, _ = batch(4)
        shift = jax.jit(transforms.translate_filled)
        for wrap, fill in ((False, "zeros"), (True, "wrap")):
            np.testing.assert_array_equal(shift(x, 3, -5, wrap), _np_translate(x, 3, -5, fill))


def _skimage_warp(images, matrix):
    """scikit-image's warp with the same inverse map about the centre (13.5, 13.5): bilinear, zero fill."""
    c = 13.5
    a = np.asarray(matrix, np.float64)
    full = np.array([[a[0, 0], a[0, 1], c - a[0, 0] * c - a[0, 1] * c],
                     [a[1, 0], a[1, 1], c - a[1, 0] * c - a[1, 1] * c], [0, 0, 1]])
    inverse_map = sk_transform.AffineTransform(matrix=full)
    return np.stack([sk_transform.warp(im.astype(np.float64), inverse_map, order=1, mode="constant", cval=0.0,
                                       preserve_range=True) for im in images])


def _rotation(degrees):
    t = np.deg2rad(degrees)
    return [[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]


class AffineTest(parameterized.TestCase):
    """The MNIST-C conventions: inverse map about the centre, bilinear, zero fill."""

    @parameterized.parameters(-57.3, -30.0, -11.5, 7.0, 45.0)
    def test_rotate_matches_scikit_image(self, degrees):
        x, _ = batch(8)
        np.testing.assert_allclose(transforms.rotate(x, degrees), _skimage_warp(x, _rotation(degrees)), atol=2e-5)

    @parameterized.parameters(-40.0, 11.5, 34.4, 57.3)
    def test_shear_matches_scikit_image(self, degrees):
        # MNIST-C's shear: scikit-image's AffineTransform(shear=φ) before 0.21, [[1, -sin φ], [0, cos φ]].
        t = np.deg2rad(degrees)
        x, _ = batch(8)
        np.testing.assert_allclose(transforms.shear(x, degrees), _skimage_warp(x, [[1, -np.sin(t)], [0, np.cos(t)]]),
                                   atol=2e-5)

    @parameterized.parameters(0.5, 0.7, 0.9, 1.3)
    def test_scale_matches_scikit_image(self, factor):
        x, _ = batch(8)
        np.testing.assert_allclose(transforms.scale(x, factor), _skimage_warp(x, np.eye(2) / factor), atol=2e-5)

    def test_identity_at_zero(self):
        x, _ = batch(8)
        for out in (transforms.rotate(x, 0.0), transforms.shear(x, 0.0), transforms.scale(x, 1.0)):
            np.testing.assert_allclose(out, x, atol=1e-6)

    def test_quarter_turns_are_exact_and_counter_clockwise(self):
        x, _ = batch(8)
        for k in (1, 2, 3):
            np.testing.assert_allclose(transforms.rotate(x, 90.0 * k), np.rot90(x, k, axes=(1, 2)), atol=1e-5)

    def test_rotate_there_and_back_is_close_to_identity_inside(self):
        """Two bilinear resamplings blur a little; inside the inscribed disk nothing leaves the canvas."""
        x, _ = batch(64)
        back = np.asarray(transforms.rotate(transforms.rotate(x, 30.0), -30.0))
        r = np.hypot(*np.meshgrid(np.arange(28) - 13.5, np.arange(28) - 13.5))
        inside = r < 13
        # The blur of two bilinear passes: at most the mean |difference| of neighbouring pixels.
        blur = np.abs(np.diff(x, axis=-1)).mean()
        assert np.abs(back - x)[:, inside].mean() < blur
        np.testing.assert_allclose(back.sum((1, 2)), x.sum((1, 2)), rtol=0.05)

    def test_integer_offsets_are_exact_translations(self):
        x, _ = batch(8)
        for a, b in ((1, 0), (-3, 2), (5, 5)):
            np.testing.assert_array_equal(transforms.affine(x, np.eye(2), (a, b)), transforms.translate(x, -a, -b))

    def test_traced_angles_serve_a_whole_grid(self):
        x, _ = batch(4)
        angles = np.linspace(-30, 30, 7, dtype=np.float32)
        rotate = chex.assert_max_traces(transforms.rotate, n=1)
        out = jax.jit(jax.vmap(rotate, in_axes=(None, 0)))(x, angles)
        chex.assert_shape(out, (7, 4, 28, 28))
        np.testing.assert_allclose(out[1], _skimage_warp(x, _rotation(angles[1])), atol=2e-5)

    def test_each_takes_a_parameter_per_image(self):
        x, _ = batch(3)
        angles = np.array([-20.0, 0.0, 35.0], np.float32)
        out = transforms.each(transforms.rotate)(x, angles)
        for i in range(3):
            np.testing.assert_allclose(out[i], _skimage_warp(x[i : i + 1], _rotation(angles[i]))[0], atol=2e-5)


def test_permute_pixels_against_numpy_indexing():
    x, _ = batch(5)
    permutation = np.asarray(jax.random.permutation(jax.random.key(0), 784))
    out = transforms.permute_pixels(x, permutation)
    np.testing.assert_array_equal(np.asarray(out).reshape(5, -1), x.reshape(5, -1)[:, permutation])
    np.testing.assert_array_equal(transforms.permute_pixels(out, np.argsort(permutation)), x)
    with pytest.raises(ValueError, match="permutation of range"):
        transforms.permute_pixels(x, np.zeros(784, int))


def test_resize_matches_scikit_image_bilinear():
    x, _ = batch(4)
    for factor in (2, 4):
        want = np.stack([sk_transform.resize(im.astype(np.float64), (28 * factor, 28 * factor), order=1,
                                             mode="edge", anti_aliasing=False) for im in x])
        np.testing.assert_allclose(transforms.resize(x, factor), want, atol=2e-5)
    np.testing.assert_array_equal(transforms.resize(x, 1), x)
    with pytest.raises(ValueError, match="int ≥ 1"):
        transforms.resize(x, 0)




def test_centring_undoes_a_whole_pixel_shift():
    images = mnist().test.images[:400]
    ink = images > 0
    kept = ~(ink[:, :4].any((1, 2)) | ink[:, -4:].any((1, 2)) | ink[:, :, :4].any((1, 2)) | ink[:, :, -4:].any((1, 2)))
    images = images[kept]  # no ink within 4 px of an edge: a shift of up to 3 px loses none
    rng = np.random.default_rng(0)
    dx, dy = rng.integers(-3, 4, len(images)), rng.integers(-3, 4, len(images))
    shifted = transforms.each(transforms.translate)(jnp.asarray(images), jnp.asarray(dx), jnp.asarray(dy))
    np.testing.assert_array_equal(transforms.centre(shifted), transforms.centre(jnp.asarray(images)))
    com = np.asarray(transforms.centre_of_mass(transforms.centre(jnp.asarray(images))))
    assert np.abs(com - 13.5).max() <= 0.5 + 1e-4  # as near the centre as whole pixels allow
    assert len(images) > 100


def test_deskew_matches_scikit_image_and_removes_a_known_shear():
    x, _ = batch(16)
    x = x.astype(np.float64)
    # The same map by scikit-image, from moments computed here with numpy.
    rows, cols = np.indices((28, 28), dtype=np.float64)
    expected = []
    for image in x:
        mass = image.sum()
        cx, cy = (cols * image).sum() / mass, (rows * image).sum() / mass
        alpha = ((rows - cy) * (cols - cx) * image).sum() / ((rows - cy) ** 2 * image).sum()
        c = 13.5
        inverse_map = sk_transform.AffineTransform(matrix=np.array(
            [[1.0, alpha, cx - c - alpha * c], [0.0, 1.0, cy - c], [0.0, 0.0, 1.0]]))
        expected.append(sk_transform.warp(image, inverse_map, order=1, mode="constant", cval=0.0, preserve_range=True))
    deskewed = np.asarray(transforms.deskew(jnp.asarray(x, jnp.float32)))
    np.testing.assert_allclose(deskewed, np.stack(expected), atol=2e-5)
    # Shear the deskewed digits by known amounts: their skew is that amount, and deskewing removes it.
    shears = np.linspace(-0.5, 0.5, 16)
    sheared = transforms.each(transforms.affine)(
        jnp.asarray(deskewed, jnp.float32), jnp.asarray([[[1.0, -s], [0.0, 1.0]] for s in shears], jnp.float32),
        jnp.zeros((16, 2), jnp.float32))
    np.testing.assert_allclose(transforms.skew(sheared), shears, atol=0.05)
    assert np.abs(np.asarray(transforms.skew(transforms.deskew(sheared)))).max() < 0.02


def _mnist_c_reference(image, corruption, c):
    """MNIST-C's own recipe (google-research/mnist-c corruptions.py) with scikit-image, for a signed magnitude c:
    an AffineTransform as the inverse map, re-centred on (13.5, 13.5) for rotate, shear and scale."""
    if corruption == "translate":
        aff = sk_transform.AffineTransform(translation=c)
    else:
        if corruption == "rotate":
            linear = sk_transform.AffineTransform(rotation=c).params[:2, :2]
        elif corruption == "shear":  # scikit-image before 0.21, which MNIST-C ran
            linear = np.array([[1.0, -np.sin(c)], [0.0, np.cos(c)]])
        else:
            linear = sk_transform.AffineTransform(scale=(1 / c, 1 / c)).params[:2, :2]
        shift = 13.5 * (1 - linear.sum(axis=1))
        aff = sk_transform.AffineTransform(matrix=np.vstack([np.c_[linear, shift], [0, 0, 1]]))
    return np.clip(sk_transform.warp(image.astype(np.float64), inverse_map=aff), 0, 1)


@pytest.mark.parametrize("corruption", list(transforms.MNIST_C))
@pytest.mark.parametrize("severity", [1, 3, 5])
def test_mnist_c_corruptions_match_their_recipe(corruption, severity):
    x, _ = batch(12)
    key = jax.random.key(severity)
    params = [np.asarray(p) for p in transforms.mnist_c_params(key, 12, corruption, severity)]
    corrupted = np.asarray(transforms.mnist_c(key, jnp.asarray(x), corruption, severity))
    c = transforms.MNIST_C[corruption][severity - 1]
    for i, image in enumerate(x):
        if corruption == "translate":
            dx, dy = params[0][i], params[1][i]
            assert abs(dx) == abs(dy) == c
            signed = (-dx, -dy)  # MNIST-C's inverse map samples at +(dx, dy): the content moves the other way
        elif corruption == "scale":
            assert np.isclose(params[0][i], c)
            signed = c
        else:
            assert np.isclose(abs(params[0][i]), np.degrees(c), rtol=1e-6)
            signed = np.radians(params[0][i])
        np.testing.assert_allclose(corrupted[i], _mnist_c_reference(image, corruption, signed), atol=3e-5)
    if corruption in ("rotate", "shear", "translate"):
        assert len(np.unique(np.sign(params[0]))) == 2  # both signs drawn, one per image


def test_mnist_c_refuses_unknown_corruptions_and_severities():
    with pytest.raises(ValueError, match="spatial ones"):
        transforms.mnist_c_params(jax.random.key(0), 4, "fog", 1)
    with pytest.raises(ValueError, match="1…5"):
        transforms.mnist_c_params(jax.random.key(0), 4, "rotate", 6)


def _skimage_rotate_translate(image, dx, dy, degrees):
    """The content rotated about (13.5, 13.5) by `degrees` (counter-clockwise as displayed), then moved by
    (dx, dy): scikit-image's forward AffineTransform, warped with its inverse; bilinear, zero fill, clipped."""
    c = np.array([13.5, 13.5])
    forward = np.linalg.inv(np.asarray(_rotation(degrees)))
    matrix = np.vstack([np.c_[forward, c + np.array([dx, dy]) - forward @ c], [0, 0, 1]])
    return np.clip(sk_transform.warp(image.astype(np.float64), sk_transform.AffineTransform(matrix=matrix).inverse,
                                     order=1, mode="constant", cval=0.0), 0, 1)


def test_rotate_translate_matches_scikit_image():
    x, _ = batch(6)
    for dx, dy, degrees in ((1.5, -3.0, 20.0), (0.0, 0.0, -30.0), (-3.0, 2.25, 7.0), (3.0, 3.0, 0.0)):
        want = np.stack([_skimage_rotate_translate(im, dx, dy, degrees) for im in x])
        np.testing.assert_allclose(transforms.rotate_translate(x, dx, dy, degrees), want, atol=3e-5)
    # Integer shifts without rotation are exact translations.
    np.testing.assert_array_equal(transforms.rotate_translate(x, 2.0, -1.0, 0.0), transforms.translate(x, 2, -1))


def test_engstrom_grid_and_random_draws():
    dx, dy, degrees = transforms.spatial_grid(3.0, 30.0, (5, 5, 31))
    chex.assert_shape([dx, dy, degrees], (775,))
    assert sorted(set(dx.tolist())) == [-3.0, -1.5, 0.0, 1.5, 3.0]
    np.testing.assert_allclose(np.unique(degrees), np.arange(-30, 31, 2), atol=1e-5)
    assert len({(a, b, c) for a, b, c in zip(dx, dy, degrees)}) == 775 and (0, 0, 0) in set(zip(dx, dy, degrees))
    with pytest.raises(ValueError, match="three counts"):
        transforms.spatial_grid(3.0, 30.0, (5, 0, 31))
    with pytest.raises(ValueError, match="tries ≥ 1"):
        transforms.random_spatial(jax.random.key(0), 0, 10, 3.0, 30.0)
    draws = np.asarray(transforms.random_spatial(jax.random.key(0), 10, 5000, 3.0, 30.0))
    chex.assert_shape(draws, (3, 10, 5000))
    for values, limit in zip(draws, (3.0, 3.0, 30.0)):  # uniform on [-limit, limit]: a KS test, not a range check
        assert np.abs(values).max() <= limit
        assert scipy.stats.kstest(values.ravel(), scipy.stats.uniform(-limit, 2 * limit).cdf).pvalue > 1e-3
    np.testing.assert_array_equal(draws, transforms.random_spatial(jax.random.key(0), 10, 5000, 3.0, 30.0))


def test_mnist_c_translate_is_the_exact_shift_of_its_drawn_offsets():
    x, _ = batch(12)
    key = jax.random.key(7)
    dx, dy = (np.asarray(p) for p in transforms.mnist_c_params(key, 12, "translate", 3))
    want = np.stack([_np_translate(im, int(i), int(j), "zeros") for im, i, j in zip(x, dx, dy)])
    np.testing.assert_array_equal(transforms.mnist_c(key, jnp.asarray(x), "translate", 3), want)


def test_random_mnist_c_gives_each_image_one_of_the_corruptions():
    x, _ = batch(300)
    augmented = np.asarray(transforms.random_mnist_c(jax.random.key(3), jnp.asarray(x)))
    # Every candidate, by scikit-image's recipe: none, or a corruption at a severity and sign.
    found = []
    for image, out in zip(x, augmented):
        candidates = {("none", 0): image}
        for corruption, magnitudes in transforms.MNIST_C.items():
            for severity, c in enumerate(magnitudes, 1):
                signed = ([(c,)] if corruption == "scale" else
                          [(s * c,) for s in (-1, 1)] if corruption != "translate" else
                          [((sx * c, sy * c),) for sx in (-1, 1) for sy in (-1, 1)])
                for (v,) in signed:
                    candidates[corruption, severity, str(v)] = _mnist_c_reference(image, corruption, v)
        errors = {k: np.abs(out - v).max() for k, v in candidates.items()}
        best = min(errors, key=errors.get)
        assert errors[best] < 3e-5, (best, errors[best])
        found.append(best[0])
    kinds, counts = np.unique(found, return_counts=True)
    assert set(kinds) == {"none", *transforms.MNIST_C}
    assert scipy.stats.chisquare(counts).pvalue > 1e-3  # each of the five about equally often


def test_rotate_translate_augmentation_draws_from_its_key():
    x, _ = batch(8)
    key = jax.random.key(11)
    dx, dy, degrees = (np.asarray(d[0]) for d in transforms.random_spatial(key, 1, 8, 3.0, 30.0))
    want = np.stack([_skimage_rotate_translate(im, *p) for im, p in zip(x, zip(dx, dy, degrees))])
    np.testing.assert_allclose(transforms.random_rotate_translate(key, jnp.asarray(x), 3.0, 30.0), want, atol=3e-5)


def test_moment_maps_leave_a_blank_image_alone():
    blank = jnp.zeros((2, 28, 28), jnp.float32).at[1, 10:18, 12:15].set(1.0)
    out = np.asarray(transforms.deskew(blank))
    assert np.isfinite(out).all() and not out[0].any()
    np.testing.assert_array_equal(transforms.centre(blank)[0], blank[0])
