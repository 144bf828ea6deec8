"""Running an experiment: its training split on the device, the linear recipe, vmapped seeds,
compile and run timed apart, provenance, and outputs written from the results file alone."""

from __future__ import annotations

import atexit
import dataclasses
import datetime
import hashlib
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import jax
import numpy as np

from mnist_linear import config as configs
from mnist_linear import (checks, compiling, data, evaluate, models, phases, results, sharding, tables, tasks, train,
                          tuning)


class Run(NamedTuple):
    """What `start` hands an experiment: its checked config, output folder, preset and data."""

    config: Any
    out: Path
    preset: str
    dataset: data.Dataset
    train_split: data.Split  # on the device
    test_split: data.Split  # images on the device, labels on the host (scores are counted there)
    environment: dict  # `environment()` as the run started: the code it ran is the commit checked out then


def start(config_cls, doc: str, argv: Sequence[str] | None = None) -> Run:
    """The first line of every experiment: flags checked (`config.parse`), the other processes joined when the
    environment names them (`sharding.join_processes`), the persistent compilation cache on, the dataset
    loaded and verified, its training split and test images on the devices once (whole on each:
    `sharding.replicated`). With several processes only process 0 writes into `out`; the others write
    their identical copies into a temporary folder."""
    config, out, preset = configs.parse(config_cls, doc, argv)
    if sharding.join_processes() > 0:
        out = Path(tempfile.mkdtemp(prefix=f"mnist_linear-process-{jax.process_index()}-"))
        atexit.register(shutil.rmtree, out, True)
    compiling.enable_cache()
    env = environment()
    dataset = data.load(config.dataset, source=config.source)
    test = data.Split(sharding.replicated(dataset.test.images), dataset.test.labels)
    return Run(config, out, preset, dataset, training_split(config, dataset), test, env)


def training_split(config: configs.TrainingConfig, dataset: data.Dataset) -> data.Split:
    """The first `train_examples` training images (all by default), put on the device once:
    the tuning grid and every model trained from it reuse the same buffers."""
    n = config.train_examples or len(dataset.train.labels)
    return sharding.replicated(data.Split(dataset.train.images[:n], dataset.train.labels[:n]))


def tune_linear(config: configs.TrainingConfig, train_split: data.Split,
                task: tasks.Task = tasks.CLASSIFICATION) -> tuning.GridResult:
    """The linear recipe: the learning-rate × weight-decay grid of `config`, trained on the training
    split less its last `num_validation` images and chosen on those. Every experiment that trains
    the linear model tunes it this way and records `GridResult.recipe()` as `linear_recipe`."""
    fit, validation = data.split_validation(train_split, config.num_validation)
    grid, _ = phases.run("tune_linear", repr((fit.images.shape, config, task.num_outputs)),
                         lambda: _timed(_grid_search, config, train_split, fit, validation, task))
    print(f"linear recipe, tuned on validation: learning rate {grid.best.learning_rate:g}, "
          f"weight decay {grid.best.weight_decay:g}" + (" (on the grid's edge)" if grid.on_edge else ""))
    return grid


def _timed(f, *args) -> tuple[Any, dict]:
    start = time.perf_counter()
    out = f(*args)
    return out, {"total_s": time.perf_counter() - start}  # compile and run together: the grid compiles inside


def _grid_search(config, train_split, fit, validation, task):
    return tuning.grid_search(
        jax.random.fold_in(jax.random.key(config.seed), 1),  # a stream apart from the final seeds
        fit, validation, model=models.get("linear", train_split.images.shape[-1], task.num_outputs), task=task,
        config=config.train_config, learning_rates=config.learning_rates, weight_decays=config.weight_decays,
        seeds=config.tuning_seeds,
    )


def seed_keys(seed: int, count: int) -> jax.Array:
    """`count` independent typed keys `(count,)`, `jax.random.split(jax.random.key(seed), count)`: model s
    always gets key s. One compiled program (`compiling.jit`): a later process loads it from the executable
    store, where the two eager operations it replaces compile again (0.18 s of a 0.6 s warm start,
    measured on 2 CPU cores). Raises ValueError unless seed is an int and count an int ≥ 1."""
    checks.integer(seed, "seed", least=None)
    checks.integer(count, "count")
    return _seed_keys(seed=int(seed), count=int(count))


@compiling.jit(static_argnames=("seed", "count"))
def _seed_keys(*, seed: int, count: int) -> jax.Array:
    return jax.random.split(jax.random.key(seed), count)


class Trained(NamedTuple):
    """What `train_models` returns: parameters, logs, each run's failure reason, timing."""

    params: Any  # leading axis S (seeds), or (P, S) for a grid
    log: train.TrainLog
    failed: np.ndarray  # str, same leading axes: why each run failed, "" where it did not
    timing: dict  # {"compile_s", "run_s"}


def train_models(name: str, config: configs.TrainingConfig, train_split: data.Split, hparams: train.Hyperparams,
                 model: models.Model, task: tasks.Task = tasks.CLASSIFICATION, *,
                 augment: train.Augment | None = None, transform: train.Transform | None = None) -> Trained:
    """`config.seeds` models vmapped (seed s from key s), their failures reported on the console."""
    targets = task.targets(train_split)
    (params, log), timing = compile_and_run(
        train.train_seeds, sharding.replicated(seed_keys(config.seed, config.seeds)), train_split.images,
        sharding.replicated(targets), sharding.replicated(jax.tree.map(np.float32, hparams)), model=model, task=task,
        config=config.train_config, augment=augment, transform=transform,
    )
    return Trained(params, log, report_failures(name, log, task.chance_loss(np.asarray(targets))), timing)


def preprocess(train_split: data.Split, input_map: Callable[[jax.Array], jax.Array],
               batch_size: int = 1000) -> tuple[data.Split, dict]:
    """(the split with `input_map` applied to every image once, timing): float32 images in [0, 1] on the
    devices, the rest as it was. Training a model on it is training `models.preprocessed(model, input_map)`
    on `train_split` without augmentation (the same function of the same images, to float32 rounding; with
    bfloat16 products the map itself stays in float32 here), with one map per image instead of one per
    image and epoch. `input_map`: float images `(B, H, W)` -> `(B, H, W)`, e.g. `transforms.deskew`;
    `batch_size` images are mapped at a time. Raises TypeError or ValueError for bad images or batch_size.
    Not a recorded phase: an interrupted run maps again (a
    second or so) rather than keep 188 MB per 60,000 images."""
    checks.images(train_split.images)
    checks.integer(batch_size, "batch_size")
    mapped, timing = _compile_and_run(_mapped, train_split.images, input_map=input_map, batch_size=batch_size)
    return train_split._replace(images=mapped), timing


@compiling.jit(static_argnames=("input_map", "batch_size"))
def _mapped(images: jax.Array, *, input_map, batch_size: int) -> jax.Array:
    out = evaluate.chunked(lambda chunk: input_map(data.to_float(chunk[0]))[None], (images,), batch_size)[0]
    return jax.numpy.clip(out, 0.0, 1.0)  # bilinear weights that sum to 1 + an ulp still give pixels


def report_failures(name: str, log: train.TrainLog, chance_loss: float) -> np.ndarray:
    """`train.failures`, with one console line per failed run; the seed is the last axis."""
    failed = train.failures(log, chance_loss)
    for index in zip(*np.nonzero(failed != "")):
        point = f" at grid point {tuple(int(i) for i in index[:-1])}" if len(index) > 1 else ""
        print(f"FAILED {name}, seed {int(index[-1])}{point}: "
              f"{failed[index]}; left out of every mean", file=sys.stderr)
    return failed


def first_seed(params):
    """The parameters of seed 0 from a pytree with a leading seed axis (for shapes and counts), on the host:
    slicing on the device would compile one small program per leaf shape."""
    return jax.tree.map(lambda p: np.asarray(p)[0], params)


def good_seed(params, failed: np.ndarray) -> tuple[int, Any] | None:
    """(s, parameters of seed s) for the first seed that did not fail, or None when every one did:
    figures draw this one, never a failed model."""
    ok = np.flatnonzero(np.asarray(failed) == "")
    if not ok.size:
        return None
    return int(ok[0]), jax.tree.map(lambda p: np.asarray(p)[ok[0]], params)  # sliced on the host, as first_seed


def compile_and_run(jitted, *args, **kwargs):
    """(outputs, {"compile_s", "run_s"}): compile and execution timed apart. The program runs under
    `jax.transfer_guard("disallow")`: every argument must already be on the devices
    (`sharding.replicated`), so that the data cross from the host once per experiment, not once per
    program. One phase of the run (`phases`): under `phases.recording`, a phase an interrupted run
    finished is read back, its outputs put whole on every device as the program left them (`sharding.cut`),
    instead of run again."""
    fingerprint = repr((jax.tree.map(lambda a: str(jax.typeof(a)), args), sorted(kwargs)))
    return phases.run(jitted.__name__, fingerprint, lambda: _compile_and_run(jitted, *args, **kwargs),
                      to_host=jax.device_get, to_device=sharding.replicated)  # as every program leaves them


def _compile_and_run(jitted, *args, **kwargs):
    start = time.perf_counter()
    compiled = jitted.compile(*args, **kwargs)  # or read from the executable store (`compiling`)
    compiled_at = time.perf_counter()
    with jax.transfer_guard("disallow"):
        out = jax.block_until_ready(compiled(*args))
    done = time.perf_counter()
    return out, {"compile_s": compiled_at - start, "run_s": done - compiled_at}


def environment() -> dict:
    """Versions, device, the JAX settings that change numbers, the cores this process may use, the
    time (UTC, `started`) and the git commit, for results.json; `start` takes it as a run begins and
    `finish` adds when it ended (`finished`). Without a git checkout to ask, the commit and whether the
    tree was dirty are both unknown (None)."""
    import flax
    import optax

    device = jax.devices()[0]
    commit = _git("rev-parse", "HEAD")
    return {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": importlib.metadata.version("jaxlib"),
        "optax": optax.__version__,
        "flax": flax.__version__,
        "numpy": np.__version__,
        "platform": device.platform,
        "device_kind": device.device_kind,
        "device_count": jax.device_count(),
        "process_count": jax.process_count(),  # >1: processes joined by jax.distributed (`sharding.join_processes`)
        "processor": _cpu_model() or platform.machine(),
        # The cores this process may use (its affinity, Linux), not all the machine has.
        "cpu_count": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "jax_default_prng_impl": jax.config.jax_default_prng_impl,
        "jax_threefry_partitionable": bool(jax.config.jax_threefry_partitionable),
        "jax_default_matmul_precision": jax.config.jax_default_matmul_precision,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "compiler_options": compiling.compiler_options(),  # of the training and evaluation programs
        "started": now(),
        "git_commit": commit,
        # None when there is no git checkout to ask (a copied tree, say): unknown, not clean.
        "git_dirty": None if commit is None else bool(_git("status", "--porcelain", "--untracked-files=no")),
    }


def now() -> str:
    """The time, UTC, to the second (ISO 8601)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def code_version() -> dict:
    """The code this process runs: its git commit and a hash of the uncommitted changes to tracked files
    (both None without a git checkout to ask)."""
    diff = _git("diff", "HEAD")
    return {"git_commit": _git("rev-parse", "HEAD"),
            "uncommitted": None if diff is None else hashlib.sha256(diff.encode()).hexdigest()[:16]}


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        return None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True, cwd=Path(__file__).parent
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


class EveryRunFailed(RuntimeError):
    """Every seed of some model failed; the results, tables and figures were written all the same."""


def finish(run: Run, *, experiment: str, make_tables: Callable, write_figures: Callable | None = None,
           records: list[dict], results_file: str = "results.json", group: tuple[str, ...] = ("model",),
           **fields) -> dict:
    """Writes the results file into `run.out`, then the tables and figures made from its contents
    alone; prints the tables.

    The file holds `experiment`, `preset`, `config`, `environment`, `dataset`,
    the experiment's own `fields` (its `linear_recipe`, timing, summaries), `every_run_failed` and `records`.
    Returns the file's contents as read back. Raises EveryRunFailed, after
    writing everything, when every run of some model failed (a model: the
    records sharing the `group` fields, its name and variant).
    """
    out, dataset = run.out, run.dataset
    lost = results.all_failed(records, group)
    written = {
        "experiment": experiment,
        "preset": run.preset,
        "config": dataclasses.asdict(run.config),
        "environment": {**run.environment, "finished": now()},
        "dataset": {"name": dataset.name, "md5": dataset.md5, "folder": str(dataset.folder)},
        **fields,
        "every_run_failed": [dict(zip(group, value)) for value in lost],  # models (`group` fields) with no run left
        "records": records,
    }
    results.write_json(out / results_file, written)
    written = results.read_json(out / results_file)
    table_list = make_tables(written)
    write_tables(out, table_list)
    if write_figures is not None:
        write_figures(written, out)
    print("\n".join(t.markdown() for t in table_list))
    if lost:
        reasons = sorted({r["failed"] for r in records if tuple(r.get(k) for k in group) in lost})
        hint = ("the learning rate is likely too high (lower it)" if any("inf or nan" in r or "first epoch" in r
                                                                          for r in reasons)
                else "the learning rate is likely too low, or training too short (raise either)")
        names = ", ".join(" ".join(map(str, value)) for value in lost)
        raise EveryRunFailed(f"Every run of {names} failed ({'; '.join(reasons)}): {hint}. The tables in "
                             f"{run.out} say so; the records are in {results_file}.")
    return written


def write_tables(out: Path, table_list: Sequence[tables.Table]) -> None:
    """table.md and table.tex, the same tables in both."""
    results.write_text(out / "table.md", "\n".join(t.markdown() for t in table_list))
    results.write_text(out / "table.tex", "\n".join(t.latex() for t in table_list))
