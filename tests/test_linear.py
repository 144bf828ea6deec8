"""The linear model, its loss and its update step against numpy and closed forms, on real images."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from realdata import batch

from mnist_linear import linear, metrics, train


def _np_log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _np_loss(w, b, x, y):
    """Cross-entropy of the linear model in plain numpy (float64)."""
    z = x.reshape(len(x), -1) @ w + b
    return -_np_log_softmax(z)[np.arange(len(y)), y].mean()


def _np_grad(w, b, x, y):
    """Closed form: dL/dw = x^T (softmax - onehot) / N, dL/db = mean(softmax - onehot)."""
    x = x.reshape(len(x), -1)
    delta = np.exp(_np_log_softmax(x @ w + b)) - np.eye(10)[y]
    return {"w": x.T @ delta / len(x), "b": delta.mean(0)}


def _params(seed=0, scale=0.05):
    # Larger than the default init so that the logits are far from uniform.
    return linear.init(jax.random.key(seed), scale=scale)


class LinearTest(chex.TestCase):
    def test_init_shapes_and_seeds(self):
        p = linear.init(jax.random.key(0))
        chex.assert_shape(p["w"], (784, 10))
        chex.assert_shape(p["b"], (10,))
        chex.assert_type([p["w"], p["b"]], jnp.float32)
        chex.assert_trees_all_equal(p, linear.init(jax.random.key(0)))
        self.assertFalse(np.allclose(p["w"], linear.init(jax.random.key(1))["w"]))
        np.testing.assert_allclose(np.std(p["w"]), 0.01, rtol=0.05)

    @chex.variants(with_jit=True, without_jit=True)
    def test_logits_match_numpy(self):
        x, _ = batch(64)
        p = _params()
        out = self.variant(linear.logits)(p, x)
        chex.assert_shape(out, (64, 10))
        chex.assert_type(out, jnp.float32)
        want = x.reshape(64, 784).astype(np.float64) @ np.asarray(p["w"], np.float64) + np.asarray(p["b"])
        np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
        # Leading axes are kept: (2, 32, 28, 28) -> (2, 32, 10).
        chex.assert_trees_all_close(self.variant(linear.logits)(p, x.reshape(2, 32, 28, 28)), out.reshape(2, 32, 10))

    @chex.variants(with_jit=True, without_jit=True)
    def test_cross_entropy_and_accuracy_match_numpy(self):
        x, y = batch(64)
        p = _params()
        z = linear.logits(p, x)
        loss = self.variant(metrics.cross_entropy)(z, y)
        chex.assert_shape(loss, ())
        w, b = np.asarray(p["w"], np.float64), np.asarray(p["b"], np.float64)
        np.testing.assert_allclose(loss, _np_loss(w, b, x.astype(np.float64), y), rtol=1e-5)
        acc = self.variant(metrics.accuracy)(z, y)
        np.testing.assert_allclose(acc, np.mean(np.argmax(np.asarray(z), -1) == y))

    @chex.variants(with_jit=True, without_jit=True)
    def test_gradient_is_the_closed_form(self):
        x, y = batch(128)
        p = _params()
        loss = lambda p: metrics.cross_entropy(linear.logits(p, x), y)  # noqa: E731
        grads = self.variant(jax.grad(loss))(p)
        chex.assert_trees_all_equal_shapes(grads, p)
        want = _np_grad(np.asarray(p["w"], np.float64), np.asarray(p["b"], np.float64), x.astype(np.float64), y)
        chex.assert_trees_all_close(grads, want, rtol=1e-4, atol=1e-6)

    def test_gradient_matches_finite_differences(self):
        x, y = batch(32)
        rng = np.random.default_rng(0)
        with jax.enable_x64(True):
            p = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), _params())
            grads = jax.grad(lambda p: metrics.cross_entropy(linear.logits(p, x.astype(np.float64)), y))(p)
            w, b = np.asarray(p["w"]), np.asarray(p["b"])
            eps = 1e-6
            # Random directions, and single coordinates that touch inked pixels.
            for _ in range(3):
                dw, db = rng.normal(size=w.shape), rng.normal(size=b.shape)
                fd = (_np_loss(w + eps * dw, b + eps * db, x, y) - _np_loss(w - eps * dw, b - eps * db, x, y)) / (2 * eps)
                np.testing.assert_allclose(np.sum(grads["w"] * dw) + np.sum(grads["b"] * db), fd, rtol=1e-6)
            for pixel, cls in [(14 * 28 + 14, 3), (10 * 28 + 16, 7)]:
                dw = np.zeros_like(w)
                dw[pixel, cls] = 1.0
                fd = (_np_loss(w + eps * dw, b, x, y) - _np_loss(w - eps * dw, b, x, y)) / (2 * eps)
                np.testing.assert_allclose(grads["w"][pixel, cls], fd, rtol=1e-5, atol=1e-10)

    def test_one_sgd_step_is_params_minus_lr_grad(self):
        x, y = batch(100)
        p = _params()
        lr, wd = 0.3, 1e-3
        w, b = np.asarray(p["w"], np.float64), np.asarray(p["b"], np.float64)
        g = _np_grad(w, b, x.astype(np.float64), y)
        for momentum in (0.0, 0.9):  # the first momentum step is plain SGD
            opt = train.make_optimizer(train.Hyperparams(lr, wd), momentum)
            step = train.make_update_step(linear.logits, metrics.cross_entropy, opt)
            new, _, m = step(p, opt.init(p), x, y)
            want = {"w": w - lr * (g["w"] + wd * w), "b": b - lr * (g["b"] + wd * b)}
            chex.assert_trees_all_close(new, want, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(m["loss"], _np_loss(w, b, x, y), rtol=1e-5)

    def test_momentum_second_step(self):
        x, y = batch(100)
        x2, y2 = batch(100, start=100)
        p0 = _params()
        lr, mu = 0.1, 0.9
        opt = train.make_optimizer(train.Hyperparams(lr, 0.0), mu)
        step = train.make_update_step(linear.logits, metrics.cross_entropy, opt)
        p1, state, _ = step(p0, opt.init(p0), x, y)
        p2, _, _ = step(p1, state, x2, y2)
        as64 = lambda p: (np.asarray(p["w"], np.float64), np.asarray(p["b"], np.float64))  # noqa: E731
        g0 = _np_grad(*as64(p0), x, y)
        g1 = _np_grad(*as64(p1), x2, y2)
        want = jax.tree.map(lambda a, u, v: a - lr * (mu * u + v), dict(zip("wb", as64(p1))), g0, g1)
        chex.assert_trees_all_close(p2, want, rtol=1e-5, atol=1e-6)

    def test_update_step_traces_once(self):
        """New data and new hyperparameter values reuse the compiled step."""
        p = _params()
        opt = train.make_optimizer(train.Hyperparams(jnp.float32(0.1), jnp.float32(0.0)), 0.9)
        loss_fn = chex.assert_max_traces(metrics.cross_entropy, n=1)
        step = train.make_update_step(linear.logits, loss_fn, opt)
        state = opt.init(p)
        for start in (0, 100, 200):
            x, y = batch(100, start)
            p, state, _ = step(p, state, x, y)
        # A new learning rate is new state, not a new program, and it takes effect at once:
        # from the same state, the step at rate 0.01 is a tenth of the step at 0.1.
        x, y = batch(100, 300)
        at_01, _, _ = step(p, state, x, y)
        slower = state._replace(hyperparams={**state.hyperparams, "learning_rate": jnp.float32(0.01)})
        at_001, _, _ = step(p, slower, x, y)  # would raise on a second trace
        chex.assert_trees_all_close(jax.tree.map(lambda n, o: n - o, at_001, p),
                                    jax.tree.map(lambda n, o: 0.1 * (n - o), at_01, p), rtol=1e-4, atol=1e-7)

    def test_templates_are_the_columns_of_w(self):
        p = _params()
        t = linear.templates(p)
        chex.assert_shape(t, (10, 28, 28))
        np.testing.assert_array_equal(t[3].reshape(-1), p["w"][:, 3])
        np.testing.assert_array_equal(t[7, 5, 9], p["w"][5 * 28 + 9, 7])


if __name__ == "__main__":
    absltest.main()
