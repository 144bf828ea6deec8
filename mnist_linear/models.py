"""Every model as a `Model`: a pure `init(key)` and `logits(params, images)`.

The one training loop, the seed vmap, the shift grid and the results
machinery take any `Model`, so a new architecture needs nothing else. The
deeper models are flax modules; their convolutions are im2col (patches @
kernel), which XLA runs fast inside `lax.scan` on CPU, where its native
convolution was measured many times slower (benchmarks/conv_in_scan.py). A
convolution followed by 2×2 max pooling is one wider product over each 2×2
block of outputs (`Conv(pool=True)`): for 5×5 kernels a third of the patches
and four times the columns, which trained and evaluated the small CNN twice as fast on CPU
and the larger CNN 1.15 (training) to 1.35 (evaluation) times as fast.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mnist_linear import linear

Params = dict


class Model(NamedTuple):
    """A model as two pure functions over a pytree of parameters."""

    init: Callable[[jax.Array], Params]  # key -> params
    logits: Callable[[Params, jax.Array], jax.Array]  # params, float images (..., H, W) -> (..., C)


LINEAR = Model(linear.init, linear.logits)

# Every model's one name, in code, results files and tables (`tables.TITLES` gives its title).
NAMES = ("linear", "mlp", "cnn_small", "cnn_large", "cnn_gap", "templates")


def patches(x: jax.Array, size: int, padding: str, pooled: bool = False) -> jax.Array:
    """im2col for a stride-1 `size`×`size` convolution: `(N, H, W, C)` -> `(N, H', W', size·size·C)`,
    ordered (row, column, channel). `pooled`: the (size+1)² inputs under each 2×2 block of outputs
    (a window of size+1 at stride 2), `(N, H'/2, W'/2, (size+1)²·C)`; H' and W' must be even.
    Raises ValueError for an unknown padding or, pooled, an odd output size."""
    if padding == "SAME":
        before = (size - 1) // 2
        x = jnp.pad(x, ((0, 0), (before, size - 1 - before), (before, size - 1 - before), (0, 0)))
    elif padding != "VALID":
        raise ValueError(f"Unknown padding {padding!r}; choose 'SAME' or 'VALID'.")
    height, width = x.shape[1] - size + 1, x.shape[2] - size + 1
    if not pooled:
        # Stacked on a major axis, then moved beside the channels in one transpose. Joined along the channel
        # axis instead (`concatenate(pieces, -1)`, the same numbers), XLA's CPU backend copied the narrow
        # pieces one by one: a third of the GAP CNN's training step at 56 px on a 2-core Xeon, 142 ms a step
        # against 112 now. The pooled (stride-2) pieces below ran as fast joined, and evaluated faster.
        stacked = jnp.moveaxis(jnp.stack([x[:, i : i + height, j : j + width] for i in range(size)
                                          for j in range(size)], 1), 1, -2)  # (N, H', W', size², C)
        return stacked.reshape(*stacked.shape[:-2], -1)
    if height % 2 or width % 2:
        raise ValueError(f"2×2 pooling needs an even output size, got {height}×{width}: change the image size "
                         "or the padding.")
    return jnp.concatenate([x[:, i : i + height - 1 : 2, j : j + width - 1 : 2]
                            for i in range(size + 1) for j in range(size + 1)], -1)


class Conv(nn.Module):
    """A stride-1 convolution as patches @ kernel; kernel `(size, size, C_in, C_out)` as in `nn.Conv`.
    `pool`: followed by 2×2 max pooling, `(N, H, W, C_in)` -> `(N, H'/2, W'/2, C_out)` (ReLU commutes with
    it: `relu(Conv(pool=True)(x))` is max pooling of the ReLU)."""

    features: int
    size: int = 3
    padding: str = "SAME"
    pool: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (self.size, self.size, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        if self.pool:
            # The kernel at each of the four places of a 2×2 block, zero elsewhere: one product gives the block's
            # four outputs side by side, and the pooling is their maximum.
            placed = [jnp.pad(kernel, ((a, 1 - a), (b, 1 - b), (0, 0), (0, 0))) for a in (0, 1) for b in (0, 1)]
            block = jnp.stack(placed, -2)  # (size + 1, size + 1, C_in, 4, C_out)
            y = patches(x, self.size, self.padding, pooled=True) @ block.reshape(-1, 4 * self.features)
            y = y.reshape(*y.shape[:-1], 4, self.features).max(-2)
        else:
            y = patches(x, self.size, self.padding) @ kernel.reshape(-1, self.features)
        return y + jnp.broadcast_to(bias, y.shape)


def max_pool(x: jax.Array, window: int = 2) -> jax.Array:
    """Non-overlapping max pooling `(N, H, W, C)` -> `(N, H/window, W/window, C)` (H, W divisible)."""
    n, h, w, c = x.shape
    return x.reshape(n, h // window, window, w // window, window, c).max(axis=(2, 4))


class MLP(nn.Module):
    """One hidden layer: 784 -> hidden (ReLU) -> classes."""

    hidden: int = 300
    classes: int = 10

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(self.hidden)(x.reshape(x.shape[0], -1)))
        return nn.Dense(self.classes)(x)


class SmallCNN(nn.Module):
    """LeNet-5's layout with ReLU and max pooling: conv 5×5 ×6, pool, conv 5×5 ×16, pool, 120, 84, classes."""

    classes: int = 10

    @nn.compact
    def __call__(self, x):
        x = nn.relu(Conv(6, 5, "SAME", pool=True)(x))  # 28 -> 14
        x = nn.relu(Conv(16, 5, "VALID", pool=True)(x))  # 14 -> 10 -> 5
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(84)(nn.relu(nn.Dense(120)(x))))
        return nn.Dense(self.classes)(x)


class LargerCNN(nn.Module):
    """The "scale" step: two blocks of two 3×3 convolutions, then a wide dense layer."""

    widths: Sequence[int] = (32, 64)
    hidden: int = 256
    classes: int = 10

    @nn.compact
    def __call__(self, x):
        for width in self.widths:
            x = nn.relu(Conv(width, pool=True)(nn.relu(Conv(width)(x))))
        x = nn.relu(nn.Dense(self.hidden)(x.reshape(x.shape[0], -1)))
        return nn.Dense(self.classes)(x)


class GlobalPoolCNN(nn.Module):
    """Convolutions, then a global average: the parameter count does not depend on the image size."""

    widths: Sequence[int] = (16, 32, 64)
    classes: int = 10

    @nn.compact
    def __call__(self, x):
        for i, width in enumerate(self.widths):
            x = nn.relu(Conv(width)(x))
            if i < len(self.widths) - 1:
                # Pooled separately: with 3×3 kernels the pooled product does 16/9 the work, which cost this
                # model 35 % more time at 112 px (resolution experiment); the 5×5 and narrow ones gained.
                x = max_pool(x)
        return nn.Dense(self.classes)(x.mean(axis=(1, 2)))


class MultiTemplate(nn.Module):
    """A linear model with k templates per class; the class logit is a logsumexp or max over its k scores."""

    k: int = 2
    reduce: str = "logsumexp"
    classes: int = 10

    @nn.compact
    def __call__(self, x):
        scores = nn.Dense(self.classes * self.k)(x.reshape(x.shape[0], -1))
        scores = scores.reshape(x.shape[0], self.classes, self.k)
        if self.reduce == "logsumexp":
            return jax.nn.logsumexp(scores, axis=-1)
        if self.reduce == "max":
            return scores.max(axis=-1)
        raise ValueError(f"Unknown reduce {self.reduce!r}; choose 'logsumexp' or 'max'.")


def _flax_init(module: nn.Module, image_shape: tuple[int, int], key: jax.Array) -> Params:
    return module.init(key, jnp.zeros((1, *image_shape, 1), jnp.float32))["params"]


def _flax_logits(module: nn.Module, image_shape: tuple[int, int], params: Params, images: jax.Array) -> jax.Array:
    if not jnp.issubdtype(images.dtype, jnp.floating):
        raise TypeError(f"Models take float images in [0, 1], got {images.dtype}: convert uint8 pixels with "
                        "data.to_float.")
    if images.ndim < 2 or tuple(images.shape[-2:]) != tuple(image_shape):
        raise ValueError(f"This model takes images (..., {image_shape[0]}, {image_shape[1]}), got shape "
                         f"{tuple(images.shape)}; reshape flat pixels with x.reshape(-1, {image_shape[0]}, "
                         f"{image_shape[1]}).")
    batch_shape = images.shape[:-2]
    x = images.reshape(-1, *images.shape[-2:], 1)
    out = module.apply({"params": params}, x)
    return out.reshape(*batch_shape, out.shape[-1])


def from_flax(module: nn.Module, image_shape: tuple[int, int] = (28, 28)) -> Model:
    """A flax module over `(N, H, W, 1)` images as a `Model` over float images `(..., H, W)`
    (a single `(H, W)` image gives one row of outputs); other shapes raise ValueError, integer
    pixels TypeError."""
    # Partials of module-level functions, not closures: `compiling`'s executable store can name them (by the
    # module's fields), so a later process runs a stored program of a flax model without tracing it.
    image_shape = tuple(image_shape)
    return Model(functools.partial(_flax_init, module, image_shape), functools.partial(_flax_logits, module, image_shape))


def get(name: str, image_size: int = 28, outputs: int = 10, **kwargs) -> Model:
    """A model by its name in `NAMES`, for square images of `image_size` px and `outputs` outputs
    (classes, or regression targets). Options: cnn_large (widths=, hidden=), cnn_gap (widths=),
    mlp (hidden=), templates (k=, reduce=). Raises ValueError for an unknown name or option."""
    if name not in NAMES:
        raise ValueError(f"Unknown model {name!r}; choose one of {NAMES}.")
    if name == "linear":
        if kwargs:
            raise ValueError(f"The linear model takes no options, got {sorted(kwargs)}.")
        if (image_size, outputs) == (28, 10):
            return LINEAR
        return Model(functools.partial(linear.init, num_pixels=image_size * image_size, num_outputs=outputs),
                     linear.logits)
    modules = {"mlp": MLP, "cnn_small": SmallCNN, "cnn_large": LargerCNN, "cnn_gap": GlobalPoolCNN,
               "templates": MultiTemplate}
    try:
        module = modules[name](classes=outputs, **kwargs)
    except TypeError as e:
        raise ValueError(f"Bad options for {name}: {e}") from e
    return from_flax(module, (image_size, image_size))


def preprocessed(model: Model, transform: Callable[[jax.Array], jax.Array]) -> Model:
    """`model` with a fixed input map built in, `logits(params, transform(images))`: a preprocessing such
    as `transforms.centre` or `transforms.deskew` then acts on every image it is trained on or scored
    on, after any perturbation of the input. `transform`: float images `(N, H, W)` -> `(N, H', W')`."""
    return Model(model.init, functools.partial(_preprocessed_logits, model.logits, transform))


def _preprocessed_logits(logits, transform, params: Params, images: jax.Array) -> jax.Array:
    return logits(params, transform(images))


def parameter_count(params: Params) -> int:
    """The number of scalars in a pytree of parameters (of one model: no seed axis)."""
    return sum(int(p.size) for p in jax.tree.leaves(params))
