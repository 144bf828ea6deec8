"""Devices and compiling: the model axis split over devices (padding, cutting, a sweep on 8 devices
against 1), and the persistent compilation cache."""

import os
import subprocess
import sys
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sharded_sweep
from realdata import mnist

from mnist_linear import compiling, models, sharding, tasks, train


def test_padding_and_cutting_give_back_the_models():
    tree = {"w": jnp.arange(15.0).reshape(5, 3), "b": jnp.arange(5)}

    @jax.jit
    def split_and_cut(t):
        split = sharding.split_models(t)
        return split, sharding.cut(split, 5)

    split, back = split_and_cut(tree)
    assert split["w"].shape[0] == sharding.padded(5) and sharding.padded(5) % jax.device_count() == 0
    chex.assert_trees_all_equal(back, tree)
    # The padding repeats the first models: a padded model trains exactly as the one it copies.
    extra = split["w"].shape[0] - 5
    np.testing.assert_array_equal(np.asarray(split["w"])[5:], np.asarray(tree["w"])[np.arange(extra) % 5])
    with pytest.raises(ValueError, match="one leading model axis"):
        jax.jit(sharding.split_models)({"w": jnp.zeros((5, 3)), "b": jnp.zeros(4)})
    placed = sharding.replicated(tree)
    assert placed["w"].sharding.is_fully_replicated and len(placed["w"].sharding.device_set) == jax.device_count()


@pytest.mark.parametrize("at_once", [0, 1, 2, 3, 7])
def test_models_at_once_computes_every_model_with_its_own_parameters(at_once):
    """`over_models` with g models at a time against numpy (`sharded_sweep.stacks`, which the 8-device
    sweep also runs): S = 5 in stacks of 1, 2, 3 or 7, padding cut off. A negative g is refused."""
    assert sharded_sweep.stacks(5, at_once).shape == (2, 5, 6, 3)
    with pytest.raises(ValueError, match="models_at_once must be an int ≥ 0, got -1"):
        jax.jit(lambda w: sharding.over_models(lambda stack: stack, w, -1))(jnp.zeros((5, 3)))


def _sweep(tmp_path: Path, devices: int) -> dict:
    out = tmp_path / f"{devices}.npz"
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}".strip()
    env = {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), str(Path(__file__).parent.parent)])}
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("sharded_sweep.py")), str(out)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{devices} devices; {1 if devices == 8 else 5} of the 5 linear models on each" in proc.stdout
    with np.load(out) as arrays:
        return dict(arrays)


@pytest.mark.xdist_group("sharding")
def test_a_sweep_on_eight_devices_equals_one_device(tmp_path):
    """Tuning, training (independent and shared orders, a transform grid; the linear model and the small
    CNN) and the evaluations (seed outputs, a warped grid, a grid through the templates), g models at a
    time (`models_at_once`; two stacks per device in `stacks`): 8 devices give one device's numbers bit for
    bit. All of each device's models at once (the default; tuning, the linear sweeps and the warped grid): to
    float32 rounding."""
    one, eight = _sweep(tmp_path, 1), _sweep(tmp_path, 8)
    assert one.keys() == eight.keys()
    assert {name.rsplit(" ", 1)[1] for name in one} == {"0", "1", "2"}
    for name in one:
        if name.endswith("at once 0"):
            # Each device runs the models it holds as a smaller vmap, and XLA's CPU kernels may sum in another
            # order for another batch size (as a model alone against the same model in a vmap).
            np.testing.assert_allclose(eight[name], one[name], rtol=1e-5, atol=3e-5, err_msg=name)
        else:
            np.testing.assert_array_equal(eight[name], one[name], err_msg=name)
    # The two paths are the same computation, summed in other orders.
    np.testing.assert_allclose(one["w True at once 2"], one["w True at once 0"], rtol=1e-5, atol=3e-5)


def test_the_compilation_cache_is_on_by_default_with_a_switch(tmp_path):
    code = ("import jax, jax.numpy as jnp, mnist_linear.train; jax.jit(lambda x: x + 1)(jnp.ones(3)); "
            "print(jax.config.jax_compilation_cache_dir or 'off')")

    def run(**env):
        env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": "", **env}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                             check=True, cwd=Path(__file__).parent.parent)
        return out.stdout.strip().splitlines()[-1]

    folder = tmp_path / "cache"
    assert run(MNIST_LINEAR_COMPILATION_CACHE=str(folder)) == str(folder)
    assert any(folder.iterdir())  # the program was written there, for the next process
    assert run(MNIST_LINEAR_COMPILATION_CACHE="0") == "off"
    mine = tmp_path / "mine"  # a folder the user gave JAX is kept
    assert run(MNIST_LINEAR_COMPILATION_CACHE="", JAX_COMPILATION_CACHE_DIR=str(mine)) == str(mine)
    default = run(MNIST_LINEAR_COMPILATION_CACHE="", XDG_CACHE_HOME=str(tmp_path))
    assert default == str(tmp_path / "mnist_linear" / "jax")


_STORE_PROCESS = """
import sys, dataclasses
import jax, jax.numpy as jnp, numpy as np
from realdata import mnist
from mnist_linear import models, tasks, train

split = mnist().train
images, labels = jnp.asarray(split.images[:2000]), jnp.asarray(split.labels[:2000])
keys, hparams = jax.random.split(jax.random.key(0), 2), train.Hyperparams(jnp.float32(0.1), jnp.float32(1e-4))
traced = []
original = train.train
train.train = lambda *a, **k: traced.append(1) or original(*a, **k)  # counts the traces of train_seeds' body

def run(config, **extra):
    params, _ = train.train_seeds(keys, images, labels, hparams, model=models.LINEAR, task=tasks.CLASSIFICATION,
                                  config=config, **extra)
    return np.asarray(params["w"])

config = train.TrainConfig(epochs=1)
np.save(sys.argv[1], run(config))
first = len(traced)
run(config)  # the same call again: this process's executable
again = len(traced)
run(dataclasses.replace(config, epochs=2))  # another static argument: another executable
other = len(traced)
run(config, augment=lambda key, x: x)  # a lambda cannot be named: jax.jit's own path
print(first, again - first, other - again, len(traced) - other)
"""


def test_a_second_process_runs_the_stored_executable_without_tracing(tmp_path):
    """`compiling`'s executable store: the first process traces and compiles `train_seeds` and stores it;
    the second runs it without tracing and trains the same weights bit for bit. Another static argument
    is another executable; a lambda, which no key can name, goes through `jax.jit`'s own path."""
    env = {**os.environ, "MNIST_LINEAR_COMPILATION_CACHE": str(tmp_path / "cache"), "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), str(Path(__file__).parent.parent)])}
    counts = []
    for name in ("first", "second"):
        out = subprocess.run([sys.executable, "-c", _STORE_PROCESS, str(tmp_path / name)], env=env,
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        counts.append(out.stdout.split())
    assert counts == [["1", "0", "1", "1"], ["0", "0", "0", "1"]]
    np.testing.assert_array_equal(np.load(tmp_path / "second.npy"), np.load(tmp_path / "first.npy"))
    store = tmp_path / "cache" / "executables"
    stored = list(store.iterdir())
    assert len(stored) == 2 and not any(p.name.startswith(".") for p in stored)  # no temporary file left
    # Emptied, with JAX's cache still full: those programs come from JAX's cache, and are not stored again.
    for path in stored:
        path.unlink()
    out = subprocess.run([sys.executable, "-c", _STORE_PROCESS, str(tmp_path / "third")], env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["1", "0", "1", "1"] and not list(store.iterdir())
    np.testing.assert_array_equal(np.load(tmp_path / "third.npy"), np.load(tmp_path / "first.npy"))


_ONE_RUN_PROCESS = _STORE_PROCESS.split("first = len(traced)")[0] + "print(len(traced))\n"


def test_a_program_stored_under_rank_promotion_raise_serves_the_default_not_the_reverse(tmp_path):
    """Promotion "raise" only adds errors: what traced under it is the same program under "allow", so
    "allow" runs it without tracing, bit for bit; "raise" never takes one stored under "allow"."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), str(Path(__file__).parent.parent)])}
    traces = {}
    for order in (("raise", "allow"), ("allow", "raise")):
        for promotion in order:
            name = f"{order[0]}-first-{promotion}"
            out = subprocess.run([sys.executable, "-c", _ONE_RUN_PROCESS, str(tmp_path / name)], capture_output=True,
                                 env={**env, "MNIST_LINEAR_COMPILATION_CACHE": str(tmp_path / f"cache-{order[0]}"),
                                      "JAX_NUMPY_RANK_PROMOTION": promotion}, text=True, timeout=600)
            assert out.returncode == 0, out.stderr[-3000:]
            traces[name] = int(out.stdout)
            np.testing.assert_array_equal(np.load(tmp_path / f"{name}.npy"), np.load(tmp_path / "raise-first-raise.npy"))
    assert traces == {"raise-first-raise": 1, "raise-first-allow": 0, "allow-first-allow": 1, "allow-first-raise": 1}


_EIGHT_DEVICES_PROCESS = """
import sys
import jax, jax.numpy as jnp, numpy as np
from realdata import mnist
from mnist_linear import compiling, experiment, models, tasks, train

split = mnist().train
images, labels = jnp.asarray(split.images[:500]), jnp.asarray(split.labels[:500])
hparams = train.Hyperparams(jnp.float32(0.1), jnp.float32(0.0))
traced = []
original = train.train
train.train = lambda *a, **k: traced.append(1) or original(*a, **k)  # counts the traces of train_seeds' body
before = compiling._compiles["requests"]
keys = experiment.seed_keys(0, 8)  # a program without arguments, on one device
compiled = compiling._compiles["requests"] - before
params, _ = train.train_seeds(keys, images, labels, hparams, model=models.LINEAR, task=tasks.CLASSIFICATION,
                              config=train.TrainConfig(epochs=1))  # the models split over the eight
assert len(keys.sharding.device_set) == 1 and len(params["w"].sharding.device_set) == 8
np.savez(sys.argv[1], keys=jax.random.key_data(keys), w=params["w"])
print(compiled, len(traced))
"""


def test_stored_executables_load_on_their_own_devices_among_eight(tmp_path):
    """With 8 devices, a stored program for one device (`seed_keys`) runs on that device (loaded onto all
    eight, it expected an argument on each) and one split over the eight (`train_seeds`) runs over them:
    the second process neither compiles nor traces them, and gives the same numbers bit for bit."""
    env = {**os.environ, "MNIST_LINEAR_COMPILATION_CACHE": str(tmp_path / "cache"), "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=8".strip(),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), str(Path(__file__).parent.parent)])}
    compiled = []
    for name in ("first", "second"):
        out = subprocess.run([sys.executable, "-c", _EIGHT_DEVICES_PROCESS, str(tmp_path / f"{name}.npz")],
                             env=env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        compiled.append(out.stdout.split())
    assert compiled == [["1", "1"], ["0", "0"]]  # (seed_keys compiled, train_seeds traced) in each process
    with np.load(tmp_path / "first.npz") as first, np.load(tmp_path / "second.npz") as second:
        for name in ("keys", "w"):
            np.testing.assert_array_equal(second[name], first[name], err_msg=name)


def _module_level(x):
    return x


def test_only_what_a_key_can_name_is_stored(tmp_path, monkeypatch):
    """The key names functions of this package by module and name, values by their type and fields; a
    closure, a lambda, a method, a function from elsewhere or a traced argument sends the call to
    `jax.jit`. A file the store cannot read is compiled again."""
    import functools

    from mnist_linear import transforms

    named = compiling._token((train.TrainConfig(), tasks.CLASSIFICATION, functools.partial(transforms.translate,
                                                                                             fill="zeros")))
    assert "mnist_linear.transforms.translate" in named and "epochs=int:10" in named
    assert compiling._token(train.TrainConfig(epochs=2)) != compiling._token(train.TrainConfig())
    closure = transforms.each(transforms.translate)
    for unnamed in (lambda x: x, closure, _module_level, np.mean, train.TrainConfig().__post_init__, object()):
        assert compiling._token(unnamed) is None, unnamed
    args, static = (jnp.ones(3),), {"model": models.LINEAR}
    key = compiling._key(train.train, args, {}, static)
    assert key == compiling._key(train.train, (jnp.zeros(3),), {}, static)  # values are not in the key
    assert key != compiling._key(train.train, (jnp.ones(4),), {}, static)
    assert key != compiling._key(train.train, (jnp.ones(3, jnp.int32),), {}, static)
    # Every model of `models.get` is named by its fields (a flax model by its module's); a user's lambda is not.
    for model in (models.get("linear", outputs=3), models.get("cnn_gap", widths=(8, 16)), models.get("mlp")):
        assert compiling._key(train.train, args, {}, {"model": model}) not in (None, key)
    assert compiling._key(train.train, args, {}, {"model": models.get("cnn_gap", widths=(8, 16))}) == compiling._key(
        train.train, args, {}, {"model": models.get("cnn_gap", widths=(8, 16))})
    assert compiling._key(train.train, args, {}, {"model": models.get("cnn_gap", widths=(8, 32))}) != compiling._key(
        train.train, args, {}, {"model": models.get("cnn_gap", widths=(8, 16))})
    user_model = models.Model(lambda key: models.LINEAR.init(key), models.LINEAR.logits)
    assert compiling._key(train.train, args, {}, {"model": user_model}) is None
    with jax.numpy_rank_promotion("raise" if jax.config.jax_numpy_rank_promotion != "raise" else "allow"):
        assert compiling._key(train.train, args, {}, static) != key  # a JAX setting that changes the trace
    assert compiling._key(lambda x: x, args, {}, static) is None  # the jitted function itself must be named
    jax.jit(lambda x: assert_none(compiling._key(train.train, (x,), {}, static)))(jnp.ones(3))
    monkeypatch.setattr(compiling, "_store", lambda: tmp_path)
    (tmp_path / "torn").write_bytes(b"half a file")
    assert compiling._read("torn") is None


def assert_none(value):
    assert value is None
    return 0


def test_level_one_on_the_cpu_changes_no_number(monkeypatch):
    """The CPU's compile options (`compiling.CPU_OPTIONS`) against XLA's default, same program, no
    augmentation: the same parameters bit for bit; the logged epoch-mean loss may differ in its last bit
    (another summation order)."""
    split = mnist().train
    images, labels = jnp.asarray(split.images[:3000]), jnp.asarray(split.labels[:3000])
    hparams = train.Hyperparams(jnp.float32(0.05), jnp.float32(5e-4))
    args = (jax.random.split(jax.random.key(0), 2), images, labels, hparams)
    kwargs = {"model": models.get("cnn_small"), "task": tasks.CLASSIFICATION, "config": train.TrainConfig(epochs=1)}
    program = train.train_seeds.jitted
    (params, log), (default_params, default_log) = program.on_cpu(*args, **kwargs), program.elsewhere(*args, **kwargs)
    chex.assert_trees_all_equal(params, default_params)
    np.testing.assert_allclose(log.loss, default_log.loss, rtol=1e-6)
    assert program._pick() is program.on_cpu and compiling.compiler_options() == compiling.CPU_OPTIONS  # CPU
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=3")
    compiling._wanted.cache_clear()  # as in a process started with that flag
    assert program._pick() is program.elsewhere and compiling.compiler_options() == {}  # the user's level stays
    monkeypatch.undo()
    compiling._wanted.cache_clear()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.xdist_group("processes")
def test_an_experiment_runs_as_two_processes(tmp_path):
    """The baseline's quick preset as two processes joined by `jax.distributed` (what two hosts run, on one
    machine): the models split over both, every process reads the results whole, only process 0 writes, and
    the numbers are one process's to float32 rounding."""
    port = _free_port()
    command = [sys.executable, "-m", "experiments.baseline", "--quick", "--seeds", "4"]
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update({sharding.COORDINATOR_ENV: f"127.0.0.1:{port}", sharding.PROCESSES_ENV: "2"})
    root = Path(__file__).resolve().parents[1]
    started = [subprocess.Popen([*command, "--out", str(tmp_path / f"process-{i}")], cwd=root,
                                env={**env, sharding.PROCESS_ID_ENV: str(i)}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for i in range(2)]
    for process in started:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr[-3000:]
    assert not (tmp_path / "process-1").exists()  # the other process wrote into a temporary folder
    alone = subprocess.run([*command, "--out", str(tmp_path / "alone")], cwd=root, capture_output=True, text=True,
                           env={k: v for k, v in os.environ.items() if k != "XLA_FLAGS"})
    assert alone.returncode == 0, alone.stderr[-3000:]
    from mnist_linear import results

    two, one = (results.read_json(tmp_path / name / "results.json") for name in ("process-0", "alone"))
    assert two["environment"]["device_count"] == 2 and two["environment"]["process_count"] == 2
    np.testing.assert_allclose(results.per_seed(two["records"], "test_accuracy"),
                               results.per_seed(one["records"], "test_accuracy"), atol=2e-4)  # ≤ 2 of 10,000 images
    assert two["linear_recipe"] == one["linear_recipe"]


def test_a_coordinator_without_the_process_count_is_refused(monkeypatch):
    monkeypatch.setenv(sharding.COORDINATOR_ENV, "127.0.0.1:1")
    monkeypatch.delenv(sharding.PROCESSES_ENV, raising=False)
    with pytest.raises(ValueError, match=f"needs {sharding.PROCESSES_ENV}"):
        sharding.join_processes()
    monkeypatch.delenv(sharding.COORDINATOR_ENV)
    assert sharding.join_processes() == 0  # alone
