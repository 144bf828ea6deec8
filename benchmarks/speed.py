"""Our speed against the peers a user would otherwise pick, side by side in one run; writes benchmarks/README.md.

Run (12–18 min on 2 CPU cores of an AMD EPYC, 26 min on 2 of an Intel Xeon; the peers live in their own environment):
    make benchmark                                  # creates .venv-bench (torch==2.13.0 CPU, scikit-learn), runs this
    .venv-bench/bin/python -m benchmarks.speed --repeats 5 --out benchmarks/README.md

Every measurement runs in a fresh Python process (so nothing is cached in memory), and the approaches
take turns within each repetition (so a slow spell of a shared machine hits them alike); tables give
medians. The clock starts after the data are read from the IDX files and stops after the test accuracy
is known: it includes the transfer to the device, every compile, the training and the evaluation.

1. Time to 92 % test accuracy, one model, on the same arrays: this project (`train.train_seeds`, one
   seed, one epoch; cold: an empty persistent compilation cache; warm: the cache and its executable
   store filled by an earlier process), a Flax-example-style JAX loop (jitted step, Python loop over host batches), PyTorch on the
   CPU (tensor indexing, and a `DataLoader`) and scikit-learn's `LogisticRegression` (lbfgs).
2. Sweep throughput: model-epochs per second of S = 1, 8, 32, 128 linear models in one program, with
   independent data orders (the default) and with `shared_order=True`, each all at once (the default)
   and 8 at a time (`models_at_once`: the same numbers bit for bit on any number of devices), against
   the same models one after another (one compiled program run S times) and a naive vmap (a plain JAX
   scan, each model gathering its own batches).
3. The grid evaluation: (model × transformed image) evaluations per second of `evaluate.grid_outputs`
   (rotation and translation, bilinear) for the linear model (the images warped, and with
   `linear_transform=True` its templates warped back instead) and the small CNN.
4. The roofline: one epoch's FLOPs and minimum bytes, this machine's measured GEMM rate (a large square
   product and the training step's own skinny shapes) and memory bandwidth, hence a lower bound on the
   time of a model-epoch and the fraction of it each sweep reaches.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 0.92
RECIPE = {"learning_rate": 0.3, "weight_decay": 1e-4, "momentum": 0.9, "batch_size": 100, "epochs": 1}
SWEEP_SEEDS = (1, 8, 32, 128)
AT_ONCE = 8  # models_at_once of the sweeps' second runs (S when fewer)
GEMMS = {"2048×2048 @ 2048×2048": (2048, 2048, 2048),
         **{f"100×784 @ 784×{10 * s} ({s} models' step)": (100, 784, 10 * s) for s in SWEEP_SEEDS}}
EPOCH_FLOPS = 2 * 2 * 784 * 10 * 60_000  # per model-epoch: the forward product and the weights' gradient
IMAGE_BYTES = 60_000 * 784  # the uint8 training images, read once per epoch
# (row, model, models S, grid points, linear_transform) of the grid evaluation
GRID_RUNS = (("linear", "linear", 5, 31, False), ("linear, `linear_transform=True`", "linear", 5, 31, True),
             ("cnn_small", "cnn_small", 2, 4, False))
SWEEPS = ("independent", "independent models_at_once", "shared_order", "shared_order models_at_once", "sequential",
          "naive_vmap")
TIME_TO_TARGET = ("ours_cold", "ours_warm", "flax_style", "torch_indexing", "torch_dataloader", "sklearn_lbfgs")
TITLES = {
    "ours_cold": "this project, `train.train_seeds` (cold: empty compilation cache)",
    "ours_warm": "this project, `train.train_seeds` (warm: compilation cache and executable store filled)",
    "flax_style": "JAX, Flax-example style (jitted step, Python loop over host batches)",
    "torch_indexing": "PyTorch 2.13 CPU, `nn.Linear`, tensor indexing",
    "torch_dataloader": "PyTorch 2.13 CPU, `nn.Linear`, `DataLoader`",
    "sklearn_lbfgs": "scikit-learn `LogisticRegression` (lbfgs)",
}


# ----- workers: each runs in its own process and prints one JSON line -----

def _data():
    from mnist_linear import data
    return data.load("mnist")


def worker_ours(seeds: int, shared_order: bool, epochs: int, models_at_once: int = 0) -> dict:
    """`train.train_seeds` then `evaluate.seed_outputs`, compile (or, warm, read from the executable
    store: `compiling`) and run timed apart. The arrays go to the device as README's example puts them
    (`jax.device_put`: no copy on the CPU), the rates as plain floats: an eager `jnp` call compiles a
    program of its own in every fresh process (0.15 s each, measured)."""
    import jax
    import numpy as np

    from mnist_linear import evaluate, experiment, models, tasks, train  # the cache: $MNIST_LINEAR_COMPILATION_CACHE
    ds = _data()
    start = time.perf_counter()
    images, labels, test = jax.device_put((ds.train.images, ds.train.labels, ds.test.images))  # as README does
    config = train.TrainConfig(epochs=epochs, batch_size=RECIPE["batch_size"], momentum=RECIPE["momentum"],
                               shared_order=shared_order, models_at_once=models_at_once)
    hparams = train.Hyperparams(RECIPE["learning_rate"], RECIPE["weight_decay"])  # floats, as README's
    keys = experiment.seed_keys(0, seeds)
    compiled_at = time.perf_counter()
    program = train.train_seeds.compile(keys, images, labels, hparams, model=models.LINEAR,
                                        task=tasks.CLASSIFICATION, config=config)
    trained_at = time.perf_counter()
    params, _ = jax.block_until_ready(program(keys, images, labels, hparams))
    done_training = time.perf_counter()
    scoring = evaluate.seed_outputs.compile(params, test, apply=models.LINEAR.logits,
                                            reduce=tasks.CLASSIFICATION.reduce)
    scored_at = time.perf_counter()
    accuracy = (np.asarray(scoring(params, test)) == ds.test.labels).mean(-1)
    end = time.perf_counter()
    return {"total_s": end - start, "compile_s": trained_at - compiled_at + scored_at - done_training,
            "train_s": done_training - trained_at, "accuracy": float(accuracy.min())}


def worker_sequential(seeds: int, epochs: int) -> dict:
    """The same models one after another: one compiled single-model program, run `seeds` times."""
    import jax

    from mnist_linear import experiment, models, tasks, train
    ds = _data()
    images, labels = jax.device_put((ds.train.images, ds.train.labels))
    config = train.TrainConfig(epochs=epochs, batch_size=RECIPE["batch_size"], momentum=RECIPE["momentum"])
    hparams = train.Hyperparams(RECIPE["learning_rate"], RECIPE["weight_decay"])
    keys = experiment.seed_keys(0, seeds)
    each = [keys[s : s + 1] for s in range(seeds)]  # sliced before the clock: a slice is an eager operation
    one = train.train_seeds.lower(each[0], images, labels, hparams, model=models.LINEAR, task=tasks.CLASSIFICATION,
                                  config=config).compile()
    start = time.perf_counter()
    for key in each:
        jax.block_until_ready(one(key, images, labels, hparams))
    return {"train_s": time.perf_counter() - start}


def worker_naive_vmap(seeds: int, epochs: int) -> dict:
    """A plain JAX sweep, as one would write it first: S models vmapped over one scan of SGD steps,
    each model drawing and gathering its own batches."""
    import jax
    import jax.numpy as jnp
    import optax

    ds = _data()
    images, labels = jnp.asarray(ds.train.images), jnp.asarray(ds.train.labels)
    batch, steps = RECIPE["batch_size"], len(ds.train.labels) // RECIPE["batch_size"]
    optimizer = optax.chain(optax.add_decayed_weights(RECIPE["weight_decay"]),
                            optax.sgd(optax.cosine_decay_schedule(RECIPE["learning_rate"], steps * epochs),
                                      momentum=RECIPE["momentum"]))

    def loss(params, x, y):
        logits = x.reshape(len(x), -1) @ params["w"] + params["b"]
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    def one_model(key):
        init_key, order_key = jax.random.split(key)
        params = {"w": 0.01 * jax.random.normal(init_key, (784, 10)), "b": jnp.zeros(10)}
        state = optimizer.init(params)
        order = jnp.concatenate([jax.random.permutation(k, len(labels))[: steps * batch]
                                 for k in jax.random.split(order_key, epochs)]).reshape(-1, batch)

        def step(carry, idx):
            params, state = carry
            grads = jax.grad(loss)(params, images[idx].astype(jnp.float32) / 255, labels[idx])
            updates, state = optimizer.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), None

        return jax.lax.scan(step, (params, state), order)[0][0]

    keys = jax.random.split(jax.random.key(0), seeds)
    program = jax.jit(jax.vmap(one_model)).lower(keys).compile()
    start = time.perf_counter()
    jax.block_until_ready(program(keys))
    return {"train_s": time.perf_counter() - start}


def worker_flax_style() -> dict:
    """Flax's examples/mnist, reduced to the linear model: a TrainState, a jitted step, a Python loop
    over batches sliced on the host from a NumPy permutation."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    from flax.training import train_state

    ds = _data()
    start = time.perf_counter()
    train_images = ds.train.images.astype(np.float32) / 255
    test_images = jnp.asarray(ds.test.images.astype(np.float32) / 255)
    model = nn.Dense(10)
    steps = len(train_images) // RECIPE["batch_size"]
    tx = optax.chain(optax.add_decayed_weights(RECIPE["weight_decay"]),
                     optax.sgd(optax.cosine_decay_schedule(RECIPE["learning_rate"], steps),
                               momentum=RECIPE["momentum"]))
    params = model.init(jax.random.key(0), jnp.ones((1, 784)))
    state = train_state.TrainState.create(apply_fn=model.apply, params=params, tx=tx)

    @jax.jit
    def train_step(state, x, y):
        def loss(params):
            logits = state.apply_fn(params, x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return state.apply_gradients(grads=jax.grad(loss)(state.params))

    order = np.random.default_rng(0).permutation(len(train_images))[: steps * RECIPE["batch_size"]]
    for idx in order.reshape(steps, -1):
        state = train_step(state, train_images[idx].reshape(-1, 784), ds.train.labels[idx])
    logits = jax.jit(model.apply)(state.params, test_images.reshape(-1, 784))
    accuracy = float((np.asarray(logits.argmax(-1)) == ds.test.labels).mean())
    return {"total_s": time.perf_counter() - start, "accuracy": accuracy}


def worker_torch(loader: bool) -> dict:
    """`nn.Linear`, SGD with momentum and L2 decay, a cosine schedule per step, one epoch (our recipe):
    batches by tensor indexing or a `DataLoader`."""
    import numpy as np
    import torch

    ds = _data()
    torch.manual_seed(0)
    start = time.perf_counter()
    x = torch.from_numpy(ds.train.images).reshape(len(ds.train.labels), -1).float() / 255
    y = torch.from_numpy(ds.train.labels.astype(np.int64))
    model = torch.nn.Linear(784, 10)
    optimizer = torch.optim.SGD(model.parameters(), lr=RECIPE["learning_rate"], momentum=RECIPE["momentum"],
                                weight_decay=RECIPE["weight_decay"])
    size = RECIPE["batch_size"]
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=len(y) // size)
    if loader:
        batches = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=size, shuffle=True,
                                              drop_last=True)
    else:
        batches = ((x[i], y[i]) for i in torch.randperm(len(y)).split(size))
    for xb, yb in batches:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(xb), yb).backward()
        optimizer.step()
        schedule.step()
    with torch.no_grad():
        test = torch.from_numpy(ds.test.images).reshape(len(ds.test.labels), -1).float() / 255
        accuracy = float((model(test).argmax(-1).numpy() == ds.test.labels).mean())
    return {"total_s": time.perf_counter() - start, "accuracy": accuracy}


def worker_sklearn() -> dict:
    """Multinomial logistic regression by L-BFGS, scikit-learn's defaults (C = 1, 100 iterations)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    ds = _data()
    start = time.perf_counter()
    x = ds.train.images.reshape(len(ds.train.labels), -1).astype(np.float32) / 255
    model = LogisticRegression(solver="lbfgs", max_iter=100).fit(x, ds.train.labels)
    test = ds.test.images.reshape(len(ds.test.labels), -1).astype(np.float32) / 255
    accuracy = float((model.predict(test) == ds.test.labels).mean())
    return {"total_s": time.perf_counter() - start, "accuracy": accuracy}


def worker_machine() -> dict:
    """This machine's GEMM rate (FLOP/s) for a large square product and the training step's skinny
    shapes, and its memory bandwidth (bytes/s read), by JAX on its default device."""
    import jax
    import jax.numpy as jnp

    key = jax.random.key(0)
    out = {}
    for name, (m, k, n) in GEMMS.items():
        # Many products of distinct operands in one program (a step's worth of work per product, no dispatch
        # between them); the square one alone.
        count = 1 if m > 1000 else 500
        a, b = jax.random.normal(key, (count, m, k)), jax.random.normal(key, (k, n))
        out[name] = _per_second(lambda a, b: jax.lax.map(lambda x: x @ b, a), a, b, work=2 * m * k * n * count)
    big = jnp.ones((64 * 2**20,), jnp.float32)  # 256 MiB, far beyond any cache
    out["bandwidth"] = _per_second(jnp.sum, big, work=big.nbytes, repeats=20)
    return out


def worker_grid(model_name: str, seeds: int, points: int, linear_transform: bool) -> dict:
    """`evaluate.grid_outputs` of S models over `points` rotation × translation points on every test image
    (`linear_transform`: the linear model's templates mapped back instead of the images mapped)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from mnist_linear import evaluate, models, tasks, transforms
    ds = _data()
    model = models.get(model_name)
    params = jax.vmap(model.init)(jax.random.split(jax.random.key(0), seeds))
    images = jnp.asarray(ds.test.images)
    grid = jax.device_put(tuple(g[:points] for g in transforms.spatial_grid(3.0, 30.0, (5, 5, 31))))
    settings = {"batch_size": 500} if model_name == "linear" else {"batch_size": 50, "points_at_once": 2}
    program = evaluate.grid_outputs.lower(params, images, grid, apply=model.logits,
                                          transform=transforms.rotate_translate, reduce=tasks.CLASSIFICATION.reduce,
                                          linear_transform=linear_transform, **settings).compile()
    jax.block_until_ready(program(params, images, grid))
    start = time.perf_counter()
    jax.block_until_ready(program(params, images, grid))
    seconds = time.perf_counter() - start
    flops = _model_flops(model, params) * seeds * points * len(images)
    # One step of the evaluation's loop: points_at_once points of one chunk, through every model.
    at_once, chunk = settings.get("points_at_once", points), settings["batch_size"]
    step = jnp.zeros((at_once, chunk, *images.shape[1:]), jnp.float32)
    if linear_transform:  # the templates moved, the images as they are: one product for every point and model
        one_step = lambda params, x: jnp.einsum("bd,psdk->psbk", x[0].reshape(chunk, -1),  # noqa: E731
                                                jnp.broadcast_to(params["w"], (at_once, *params["w"].shape)))
    else:
        one_step = lambda params, x: jax.vmap(lambda x: jax.vmap(lambda p: model.logits(p, x))(params))(x)  # noqa: E731
    steps = -(-points // at_once) * -(-len(images) // chunk)
    products_s = _products_seconds(jax.make_jaxpr(one_step)(params, step).jaxpr) * steps
    return {"evaluations_per_s": seeds * points * len(images) / seconds, "model_flops_per_s": flops / seconds,
            "products_share": products_s / seconds,
            "params": int(sum(np.prod(p.shape[1:]) for p in jax.tree.leaves(params)))}


def _products_seconds(jaxpr, count: int = 64) -> float:
    """Seconds one run of `jaxpr` spends in its matrix products alone: every `dot_general` in it (nested ones
    included) at its own shapes, on random operands, `count` times in one program, per run. The bound a
    model's GEMM shapes set on this machine, whatever else it does."""
    import jax

    dots = []

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "dot_general":
                dots.append(eqn)
            for value in eqn.params.values():
                for sub in value if isinstance(value, (tuple, list)) else (value,):
                    if hasattr(sub, "eqns"):
                        walk(sub)
                    elif hasattr(sub, "jaxpr") and hasattr(sub.jaxpr, "eqns"):
                        walk(sub.jaxpr)

    walk(jaxpr)
    key = jax.random.key(0)
    # A fresh left operand for each of the `count` repetitions, so that nothing is hoisted out of the loop.
    lhs = [jax.random.normal(key, (count, *e.invars[0].aval.shape)) for e in dots]
    rhs = [jax.random.normal(key, e.invars[1].aval.shape) for e in dots]

    def products(lhs, rhs):
        # Each product written out whole, as the model writes it (the barrier keeps XLA from folding the sum in).
        def once(a):
            return [jax.lax.optimization_barrier(jax.lax.dot_general(x, y, e.params["dimension_numbers"])).sum()
                    for x, y, e in zip(a, rhs, dots)]

        return jax.lax.map(once, lhs)

    return 1 / _per_second(products, lhs, rhs, work=count, repeats=1)  # runs of the products per second, inverted


def _per_second(fn, *args, work: float, repeats: int = 5) -> float:
    """`work` (FLOPs, bytes, runs) per second of `fn(*args)`, compiled and run once first, then timed over
    `repeats` runs."""
    import jax

    compiled = jax.jit(fn).lower(*args).compile()
    jax.block_until_ready(compiled(*args))
    start = time.perf_counter()
    for _ in range(repeats):
        jax.block_until_ready(compiled(*args))
    return work * repeats / (time.perf_counter() - start)


def _model_flops(model, params) -> float:
    """FLOPs of one forward pass on one image, as XLA counts them."""
    import jax
    import jax.numpy as jnp

    one = jax.tree.map(lambda p: p[0], params)
    cost = jax.jit(model.logits).lower(one, jnp.zeros((1, 28, 28), jnp.float32)).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost["flops"])


WORKERS = {
    "ours": lambda a: worker_ours(a.seeds, a.shared_order, a.epochs, a.models_at_once),
    "sequential": lambda a: worker_sequential(a.seeds, a.epochs),
    "naive_vmap": lambda a: worker_naive_vmap(a.seeds, a.epochs),
    "flax_style": lambda a: worker_flax_style(),
    "torch_indexing": lambda a: worker_torch(loader=False),
    "torch_dataloader": lambda a: worker_torch(loader=True),
    "sklearn_lbfgs": lambda a: worker_sklearn(),
    "machine": lambda a: worker_machine(),
    "grid": lambda a: worker_grid(a.model, a.seeds, a.points, a.linear_transform),
}


# ----- the orchestrator -----

def _run(worker: str, *flags: str, cache: str = "0") -> dict:
    """One measurement in a fresh process; its JSON line, or {"error": ...} when it failed."""
    env = {**os.environ, "MNIST_LINEAR_COMPILATION_CACHE": cache}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.speed", "--worker", worker, *flags], env=env,
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(lines[-1])


def _median(runs: list[dict], key: str) -> float:
    values = [r[key] for r in runs if key in r]
    return statistics.median(values) if values else float("nan")


def measure(repeats: int, sweep_repeats: int) -> dict:
    """Every measurement, the approaches taking turns within each repetition."""
    results: dict = {"time_to_target": {name: [] for name in TIME_TO_TARGET}, "sweep": {}, "grid": {}}
    with tempfile.TemporaryDirectory() as tmp:
        warm = str(Path(tmp) / "warm")
        _run("ours", "--seeds", "1", cache=warm)  # fills the warm cache
        for r in range(repeats):
            print(f"time to {TARGET:.0%}: repetition {r + 1} of {repeats}", file=sys.stderr)
            for name in TIME_TO_TARGET:
                if name == "ours_cold":
                    run = _run("ours", "--seeds", "1", cache=str(Path(tmp) / f"cold{r}"))
                elif name == "ours_warm":
                    run = _run("ours", "--seeds", "1", cache=warm)
                else:
                    run = _run(name)
                results["time_to_target"][name].append(run)
    for r in range(sweep_repeats):
        print(f"sweeps: repetition {r + 1} of {sweep_repeats}", file=sys.stderr)
        for seeds in SWEEP_SEEDS:
            flags, stacks = ("--seeds", str(seeds)), ("--models-at-once", str(min(AT_ONCE, seeds)))
            for name, run in (("independent", lambda: _run("ours", *flags)),
                              ("independent models_at_once", lambda: _run("ours", *flags, *stacks)),
                              ("shared_order", lambda: _run("ours", *flags, "--shared-order")),
                              ("shared_order models_at_once", lambda: _run("ours", *flags, "--shared-order", *stacks)),
                              ("sequential", lambda: _run("sequential", *flags)),
                              ("naive_vmap", lambda: _run("naive_vmap", *flags))):
                results["sweep"].setdefault(f"{name} {seeds}", []).append(run())
        for row, model, seeds, points, linear_transform in GRID_RUNS:
            results["grid"].setdefault(row, []).append(
                _run("grid", "--model", model, "--seeds", str(seeds), "--points", str(points),
                     *(("--linear-transform",) if linear_transform else ())))
        results.setdefault("machine", []).append(_run("machine"))
    return results


def make_tables(results: dict, machine_name: str) -> list:
    """The four tables (`tables.Table`), from the measurements alone."""
    from mnist_linear import tables

    ttt = results["time_to_target"]
    def reached(name):  # every run finished, at or above the target
        return all("error" not in r and r["accuracy"] >= TARGET for r in ttt[name])

    peers = [n for n in TIME_TO_TARGET if not n.startswith("ours") and reached(n)]
    best_peer = min((_median(ttt[n], "total_s") for n in peers), default=float("nan"))
    rows = []
    for name in TIME_TO_TARGET:
        runs = [r for r in ttt[name] if "error" not in r]
        errors = [r["error"] for r in ttt[name] if "error" in r]
        if not runs:
            rows.append((TITLES[name], f"failed: {errors[0]}", "—", "—", "—"))
            continue
        total, accuracy = _median(runs, "total_s"), min(r["accuracy"] for r in runs)
        compile_s = f"{_median(runs, 'compile_s'):.2f}" if "compile_s" in runs[0] else "—"
        rows.append((TITLES[name], f"{total:.2f}", compile_s,
                     f"{100 * accuracy:.2f}" + ("" if accuracy >= TARGET else " (below the target)"),
                     f"{total / best_peer:.2f}"))
    out = [tables.Table(
        caption=f"Time to {TARGET:.0%} test accuracy, one linear model, from the arrays in memory to the test "
                f"accuracy (s), median of {len(ttt['ours_cold'])} fresh processes on {machine_name}.",
        header=("approach", "seconds", "of which compile", "test accuracy (%), lowest", "× the best peer"),
        rows=tuple(rows),
        notes=(f"One recipe for ours, Flax-style and PyTorch: SGD, rate {RECIPE['learning_rate']}, L2 decay "
               f"{RECIPE['weight_decay']}, momentum {RECIPE['momentum']}, batch {RECIPE['batch_size']}, cosine decay "
               "to "
               "0 over one epoch of the 60,000 training images; scikit-learn: its defaults (C = 1, 100 L-BFGS "
               "iterations). The clock includes the transfer to the device, every compile, training and scoring "
               "all 10,000 test images. The best peer: the fastest row not ours whose runs all reached the target.",),
    )]

    machine = [m for m in results["machine"] if "error" not in m]
    gemm = {k: _median(machine, k) for k in (machine[0] if machine else {}) if k != "bandwidth"}
    bandwidth = _median(machine, "bandwidth")
    flops = EPOCH_FLOPS
    rows = []
    for seeds in SWEEP_SEEDS:
        rate = {name: seeds / _median(results["sweep"].get(f"{name} {seeds}", []), "train_s")
                for name in SWEEPS}
        # The fastest a model-epoch could be: its FLOPs at the measured rate of the S models' fused product,
        # or reading the uint8 images once for all S models, whichever takes longer.
        fused = next(v for k, v in gemm.items() if k.endswith(f"({seeds} models' step)"))
        bound = max(flops / fused, IMAGE_BYTES / bandwidth / seeds)
        ratio = {n: f"{rate[n] / rate['naive_vmap']:.1f}×" for n in ("independent", "shared_order")}
        rows.append((str(seeds), *(f"{rate[n]:.1f}" for n in SWEEPS),
                     ratio["independent"], ratio["shared_order"],
                     f"{rate['shared_order'] * bound:.0%}"))
    out.append(tables.Table(
        caption=f"Sweeps: linear model-epochs per second (training only, after compiling), median of "
                f"{len(results['sweep']['independent 1'])} fresh processes on {machine_name}.",
        header=("models S", "independent orders", f"{AT_ONCE} at a time", "shared_order=True", f"{AT_ONCE} at a time",
                "one after another", "naive vmap", "independent ÷ naive", "shared ÷ naive",
                "share of the roofline (shared)"),
        rows=tuple(rows),
        notes=(f"One epoch of one model: {flops / 1e9:.2f} GFLOP (the forward product and the weights' gradient, "
               f"60,000 images) and at least {IMAGE_BYTES / 1e6:.0f} MB read (the uint8 images, once for all models "
               "of a shared-order sweep). Roofline: that work at the measured rate of the S models' fused product "
               "(100×784 @ 784×10S, the table below) or the measured bandwidth, whichever is slower; the last column "
               "divides it by the time taken. The naive vmap draws independent orders, as the first column does. "
               f"{AT_ONCE} at a time: `models_at_once={AT_ONCE}` (S when fewer), each device's models in stacks of "
               f"{AT_ONCE}, which gives the same numbers bit for bit on any number of devices.",),
    ))
    peak = max(gemm.values(), default=float("nan"))
    out.append(tables.Table(
        caption=f"The grid evaluation (`evaluate.grid_outputs`, rotation and translation, bilinear), median of "
                f"{len(next(iter(results['grid'].values())))} fresh processes on {machine_name}.",
        header=("model", "models × transformed images per second", "model GFLOP/s", "share of the best GEMM rate",
                "its products alone, share of its time"),
        rows=tuple((model, f"{_median(runs, 'evaluations_per_s'):,.0f}",
                    f"{_median(runs, 'model_flops_per_s') / 1e9:.1f}",
                    f"{_median(runs, 'model_flops_per_s') / peak:.0%}", f"{_median(runs, 'products_share'):.0%}")
                   for model, runs in results["grid"].items()),
        notes=("Model FLOPs as XLA counts one forward pass; the warp of each image is work on top of them. "
               "The last column is the time the evaluation's matrix products take alone (every `dot_general` of "
               "one step, at its own shapes, on random operands, times the steps) over the time taken: the bound "
               "the model's GEMM shapes set, whatever else it does (im2col, pooling, the warp). "
               "With `linear_transform=True` the images are not warped: each point's bilinear map moves onto the "
               "linear model's templates (logits of A x = x · (Aᵀ W) + b), and every point and model is one GEMM "
               "with the images as they are. "
               + "; ".join(f"{model}: {seeds} models, {points} points" for _, model, seeds, points, _ in GRID_RUNS[1:])
               + "; all 10,000 test images.",),
    ))
    out.append(tables.Table(
        caption=f"The machine: {machine_name}, measured by JAX.",
        header=("measure", "rate"),
        rows=tuple(("GEMM, " + re.sub(r"\((\d+) models' step\)", r"(S = \1)", name),
                    f"{value / 1e9:.1f} GFLOP/s")
                   for name, value in gemm.items())
        + (("memory bandwidth, reading 256 MiB", f"{bandwidth / 1e9:.1f} GB/s"),),
    ))
    return out


def _peer_versions() -> dict:
    """The peers' versions, as this environment has them."""
    import importlib.metadata

    versions = {}
    for package in ("torch", "scikit-learn"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def report(written: dict) -> tuple[str, str]:
    """(benchmarks/README.md, table.md) from what `main` wrote: the tables with the machine, the command and
    the date of the measurement (a results file from before these were stored: this machine, today)."""
    from mnist_linear import experiment, tables

    results, command = written["results"], written["command"]
    env = written.get("environment") or experiment.environment()
    date = written.get("date", datetime.date.today().isoformat())
    machine_name = tables.machine(env)
    table_md = "\n".join(t.markdown() for t in make_tables(results, machine_name))
    readme = "\n".join([
        "# Benchmarks", "",
        f"Written by `{command}` on {date} ({machine_name}; jax {env['jax']}, Python {env['python']}"
        + "".join(f", {p} {env[p]}" for p in ("torch", "scikit-learn") if env.get(p))
        + "). `make benchmark` installs the peers in `.venv-bench` and runs it. Every number is a median over "
        "fresh processes, the approaches taking turns; `benchmarks/speed.py` says what each one runs. Quote "
        "ratios: the machine may be shared.", "", table_md])
    return readme, table_md


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=tuple(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--seeds", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=RECIPE["epochs"], help=argparse.SUPPRESS)
    parser.add_argument("--shared-order", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--models-at-once", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--model", default="linear", help=argparse.SUPPRESS)
    parser.add_argument("--points", type=int, default=31, help=argparse.SUPPRESS)
    parser.add_argument("--linear-transform", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=5, help="repetitions of the time-to-target runs")
    parser.add_argument("--sweep-repeats", type=int, default=3, help="repetitions of the sweeps and the grid")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("README.md"), help="the report")
    parser.add_argument("--from-json", type=Path, help="write the report from this results.json, measuring nothing")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args)))
        return
    if args.repeats < 1 or args.sweep_repeats < 1:
        parser.error("--repeats and --sweep-repeats must be ≥ 1")
    from mnist_linear import results as results_io
    if args.from_json:
        written = json.loads(args.from_json.read_text())
    else:
        command = "python -m benchmarks.speed " + " ".join(argv if argv is not None else sys.argv[1:])
        results = measure(args.repeats, args.sweep_repeats)
        from mnist_linear import experiment
        written = {"command": command.strip(), "date": datetime.date.today().isoformat(),
                   "environment": {**experiment.environment(), **_peer_versions()}, "results": results}
        results_io.write_json(args.out.with_name("results.json"), written)
    readme, table_md = report(written)
    for path, text in ((args.out, readme), (args.out.with_name("table.md"), table_md)):
        results_io.write_text(path, text)
    print(readme)


if __name__ == "__main__":
    main()
