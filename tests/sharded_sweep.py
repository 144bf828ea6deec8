"""A small sweep through the public entry points, written to an .npz: `test_devices` runs it in
processes with 1 and with 8 (forced host) devices and compares the files."""

import dataclasses
import re
import sys

import jax
import numpy as np

from mnist_linear import config as configs
from mnist_linear import data, evaluate, experiment, models, tasks, train, transforms


def main(out: str) -> None:
    config = dataclasses.replace(configs.TrainingConfig(), seeds=5, epochs=1, train_examples=3000,
                           num_validation=1000, learning_rates=(0.03, 0.1, 0.3), weight_decays=(0.0, 1e-4),
                           tuning_seeds=1, models_at_once=2)
    dataset = data.load("mnist")
    split = experiment.training_split(config, dataset)
    recipe = experiment.tune_linear(config, split)
    # Keys "… at once g": g models at a time on every device (`sharding.over_models`); 0 is the default.
    arrays = {"val_score at once 2": recipe.val_score}
    test = jax.device_put(dataset.test.images[:300])
    grid = jax.device_put(transforms.spatial_grid(2.0, 20.0, (3, 1, 3)))
    for at_once in (0, 2):
        for shared in (False, True):
            run = dataclasses.replace(config, shared_order=shared, models_at_once=at_once)
            trained = experiment.train_models("linear", run, split, recipe.best, models.LINEAR)
            for name in ("w", "b"):
                arrays[f"{name} {shared} at once {at_once}"] = np.asarray(trained.params[name])
            arrays[f"loss {shared} at once {at_once}"] = np.asarray(trained.log.loss)
        arrays[f"linear grid at once {at_once}"] = np.asarray(evaluate.grid_outputs(
            trained.params, test, grid, apply=models.LINEAR.logits, transform=transforms.rotate_translate,
            batch_size=128, points_at_once=3, models_at_once=at_once))
    cnn_model = models.get("cnn_small")
    cnn = experiment.train_models("cnn", dataclasses.replace(config, seeds=3, models_at_once=1), split,
                                  train.Hyperparams(0.05, 5e-4), cnn_model)
    arrays["cnn params at once 1"] = np.concatenate([np.ravel(p) for p in jax.tree.leaves(cnn.params)])
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


if __name__ == "__main__":
    main(sys.argv[1])
