"""Every model as a `Model`: a pure `init(key)` and `logits(params, images)`.

The one training loop, the seed vmap, the shift grid and the results
machinery take any `Model`, so a new architecture needs nothing else.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax

from mnist_linear import linear

Params = dict


class Model(NamedTuple):
    """A model as two pure functions over a pytree of parameters."""

    init: Callable[[jax.Array], Params]  # key -> params
    logits: Callable[[Params, jax.Array], jax.Array]  # params, float images (..., H, W) -> (..., C)


LINEAR = Model(linear.init, linear.logits)
