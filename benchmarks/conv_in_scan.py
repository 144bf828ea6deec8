"""XLA's native convolution vs im2col (patches @ kernel) in the training loop, side by side.

Run: python -m benchmarks.conv_in_scan [--steps 50] [--batch 100]

Times one jitted `lax.scan` of SGD steps of the small and larger CNNs with
each convolution, after compiling, and checks that the two compute the same
logits from the same parameters. Prints the time per step and the ratio
(native / im2col).

Measured (batch 100; 20 steps on the CPU, 100 on the GPU):
- CPU, 2 cores (AMD EPYC): native/im2col = 7.7x (small CNN), 21.7x (larger CNN,
  widths 32/64), with each convolution that is followed by pooling computed as
  one product over 2×2 blocks of outputs (`Conv(pool=True)`); 3.0x and 29.7x
  before that. XLA's convolution inside `lax.scan` is the slow one here, which
  is why `models.Conv` is im2col.
- NVIDIA H200, before the pooled products: 1.1x (small), 0.7x (larger): on the
  GPU the native convolution is 1.4x faster for the larger CNN; im2col costs
  little there and keeps one code path.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from mnist_linear import data, metrics, models, train


class Conv(nn.Module):
    """models.Conv's parameters and interface on `lax.conv_general_dilated` (and `lax.reduce_window` for
    `pool`), XLA's convolution and pooling.

    Named Conv so that flax names and initialises its parameters exactly as models.Conv's.
    """

    features: int
    size: int = 3
    padding: str = "SAME"
    pool: bool = False

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (self.size, self.size, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        y = jax.lax.conv_general_dilated(x, kernel, (1, 1), self.padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))
        y = y + jnp.broadcast_to(bias, y.shape)
        if self.pool:
            y = jax.lax.reduce_window(y, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        return y


@contextlib.contextmanager
def native_convolutions():
    """Modules look `Conv` up when they are traced: swap it for the duration."""
    original, models.Conv = models.Conv, Conv
    try:
        yield
    finally:
        models.Conv = original


def time_scan(model: models.Model, images, labels, steps: int, batch: int) -> float:
    """Seconds per SGD step of one compiled `lax.scan` over `steps` batches (compile excluded)."""
    optimizer = optax.sgd(0.05, momentum=0.9)
    step = train.make_update_step(model.logits, metrics.cross_entropy, optimizer)

    @jax.jit
    def run(params):
        def body(carry, i):
            p, s = carry
            x = data.to_float(jax.lax.dynamic_slice_in_dim(images, i * batch, batch))
            y = jax.lax.dynamic_slice_in_dim(labels, i * batch, batch)
            p, s, m = step(p, s, x, y)
            return (p, s), m["loss"]

        (p, _), losses = jax.lax.scan(body, (params, optimizer.init(params)), jnp.arange(steps))
        return p, losses

    params = model.init(jax.random.key(0))
    jax.block_until_ready(run(params))
    start = time.perf_counter()
    jax.block_until_ready(run(params))
    return (time.perf_counter() - start) / steps


def logits_difference(model: models.Model, images) -> float:
    """max |logits| difference between the two convolutions, same parameters, full float32 precision."""
    params = model.init(jax.random.key(0))
    x = data.to_float(images[:256])
    # A fresh lambda each time: jit caches traces by function, and the swap happens at trace time.
    with jax.default_matmul_precision("float32"):
        im2col = jax.jit(lambda p, v: model.logits(p, v))(params, x)
        with native_convolutions():
            native = jax.jit(lambda p, v: model.logits(p, v))(params, x)
    return float(jnp.abs(im2col - native).max())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args(argv)
    split = data.load("mnist").train
    images = jnp.asarray(split.images[: args.steps * args.batch])
    labels = jnp.asarray(split.labels[: args.steps * args.batch])
    print(f"device: {jax.devices()[0].device_kind}, {args.steps} steps of batch {args.batch}")
    for name, module_cls in (("cnn_small", models.SmallCNN), ("cnn_large", models.LargerCNN)):
        model = models.from_flax(module_cls())
        t_im2col = time_scan(model, images, labels, args.steps, args.batch)
        with native_convolutions():
            t_native = time_scan(model, images, labels, args.steps, args.batch)
        difference = logits_difference(model, images)
        print(f"{name}: im2col {1e3 * t_im2col:.2f} ms/step, native conv {1e3 * t_native:.2f} ms/step, "
              f"native/im2col = {t_native / t_im2col:.1f}x, max |logits difference| = {difference:.1e}")
        if difference > 1e-4:
            raise AssertionError(f"{name}: the two convolutions disagree by {difference:.1e}; the timing compares "
                                 "different computations.")


if __name__ == "__main__":
    main()
