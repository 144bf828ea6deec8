"""A small sweep through the public entry points, written to an .npz: `test_devices` runs it in
processes with 1 and with 8 (forced host) devices and compares the files."""

import dataclasses
import re
import sys

import jax
import jax.numpy as jnp
import numpy as np

from mnist_linear import config as configs
from mnist_linear import data, evaluate, experiment, models, sharding, tasks, train, transforms


def main(out: str) -> None:
    config = dataclasses.replace(configs.TrainingConfig(), seeds=5, epochs=1, train_examples=3000,
                           num_validation=1000, learning_rates=(0.03, 0.1, 0.3), weight_decays=(0.0, 1e-4),
                           tuning_seeds=1)
    dataset = data.load("mnist")
    split = experiment.training_split(config, dataset)
    test = jax.device_put(dataset.test.images[:300])
    grid = jax.device_put(transforms.spatial_grid(2.0, 20.0, (3, 1, 3)))
    shifts = sharding.replicated((np.array([0, 2], np.int32), np.array([1, -1], np.int32)))
    cnn_model = models.get("cnn_small")
    # Keys "… at once g": g models at a time on every device (`sharding.over_models`); 0 is the default.
    arrays = {"stacks at once 2": stacks(19, 2)}
    for at_once in (0, 2):
        run = dataclasses.replace(config, models_at_once=at_once)
        recipe = experiment.tune_linear(run, split)
        arrays[f"val_score at once {at_once}"] = recipe.val_score
        for shared in (False, True):
            trained = experiment.train_models("linear", dataclasses.replace(run, shared_order=shared), split,
                                              recipe.best, models.LINEAR)
            for name in ("w", "b"):
                arrays[f"{name} {shared} at once {at_once}"] = np.asarray(trained.params[name])
            arrays[f"loss {shared} at once {at_once}"] = np.asarray(trained.log.loss)
        params = trained.params
        arrays[f"linear grid at once {at_once}"] = np.asarray(evaluate.grid_outputs(
            params, test, grid, apply=models.LINEAR.logits, transform=transforms.rotate_translate,
            batch_size=128, points_at_once=3, models_at_once=at_once))
        if not at_once:  # the default path: the programs above are enough
            continue
        arrays[f"templates grid at once {at_once}"] = np.asarray(evaluate.grid_outputs(
            params, test, shifts, apply=models.LINEAR.logits, transform=transforms.translate, batch_size=128,
            linear_transform=True, models_at_once=at_once))
        arrays[f"seed outputs at once {at_once}"] = np.asarray(evaluate.seed_outputs(
            params, test, apply=models.LINEAR.logits, batch_size=128, models_at_once=at_once))
        (shifted, _), _ = experiment.compile_and_run(
            train.train_grid, sharding.replicated(experiment.seed_keys(0, 5)), split.images, split.labels,
            sharding.replicated(jax.tree.map(np.float32, recipe.best)), shifts, model=models.LINEAR,
            task=tasks.CLASSIFICATION, config=run.train_config, transform=transforms.translate)
        arrays[f"train_grid w at once {at_once}"] = np.asarray(shifted["w"])
    cnn = experiment.train_models("cnn", dataclasses.replace(config, seeds=3, models_at_once=1), split,
                                  train.Hyperparams(0.05, 5e-4), cnn_model)
    arrays["cnn loss at once 1"] = np.asarray(cnn.log.loss)
    arrays["cnn grid at once 1"] = np.asarray(evaluate.grid_outputs(
        cnn.params, test, grid, apply=cnn_model.logits, transform=transforms.rotate_translate, batch_size=128,
        points_at_once=3, models_at_once=1))
    np.savez(out, **arrays)
    # What each device holds: the compiled (partitioned) training program's smallest stack of weights.
    program = train.train_seeds.lower(jax.random.split(jax.random.key(0), 5), split.images, split.labels,
                                      train.Hyperparams(0.1, 0.0), model=models.LINEAR, task=tasks.CLASSIFICATION,
                                      config=train.TrainConfig(epochs=1)).compile().as_text()
    per_device = min(int(k) for k in re.findall(r"f32\[(\d+),784,10\]", program))
    print(f"{jax.device_count()} devices; {per_device} of the 5 linear models on each")


def stacks(count: int, at_once: int) -> np.ndarray:
    """`sharding.over_models` on `count` stand-in models (two leaves, w and b), `at_once` at a time, against
    numpy: every model's output in its place, with the model axis where `fn` put it, the padding cut off (on
    8 devices, 19 models in stacks of 2 are two stacks per device). Returns the outputs `(2, count, 6, 3)`."""
    rng = np.random.default_rng(0)
    w, b, x = (rng.normal(size=shape).astype(np.float32) for shape in ((count, 4, 3), (count, 3), (6, 4)))

    def fn(stack):  # (2, S', 6, 3): the model axis second
        out = jnp.einsum("nd,sdk->snk", x, stack["w"]) + stack["b"][:, None, :]
        return jnp.stack([out, -out])

    out = np.asarray(jax.jit(lambda tree: sharding.cut(sharding.over_models(fn, tree, at_once, axis=1), count,
                                                       axis=1))({"w": w, "b": b}))
    expected = np.einsum("nd,sdk->snk", x, w) + b[:, None, :]
    np.testing.assert_allclose(out, np.stack([expected, -expected]), rtol=1e-5, atol=1e-5)
    return out


if __name__ == "__main__":
    main(sys.argv[1])
