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
                           tuning_seeds=1)
    dataset = data.load("mnist")
    split = experiment.training_split(config, dataset)
    recipe = experiment.tune_linear(config, split)
    arrays = {"val_score": recipe.val_score}
    for shared in (False, True):
        run = dataclasses.replace(config, shared_order=shared)
        trained = experiment.train_models("linear", run, split, recipe.best, models.LINEAR)
        arrays[f"w {shared}"], arrays[f"loss {shared}"] = np.asarray(trained.params["w"]), np.asarray(trained.log.loss)
    cnn = experiment.train_models("cnn", dataclasses.replace(config, seeds=3),
                                  split, train.Hyperparams(0.05, 5e-4), models.get("cnn_small"))
    arrays["cnn loss"] = np.asarray(cnn.log.loss)
    test = jax.device_put(dataset.test.images[:300])
    grid = jax.device_put(transforms.spatial_grid(2.0, 20.0, (3, 1, 3)))
    for name, model, params in (("linear", models.LINEAR, trained.params), ("cnn", models.get("cnn_small"), cnn.params)):
        arrays[f"{name} grid"] = np.asarray(evaluate.grid_outputs(
            params, test, grid, apply=model.logits, transform=transforms.rotate_translate, batch_size=128,
            points_at_once=3))
    np.savez(out, **arrays)
    # What each device holds: the compiled (partitioned) training program's smallest stack of weights.
    program = train.train_seeds.lower(jax.random.split(jax.random.key(0), 5), split.images, split.labels,
                                      train.Hyperparams(0.1, 0.0), model=models.LINEAR, task=tasks.CLASSIFICATION,
                                      config=config.train_config).compile().as_text()
    per_device = min(int(k) for k in re.findall(r"f32\[(\d+),784,10\]", program))
    print(f"{jax.device_count()} devices; {per_device} of the 5 linear models on each")


if __name__ == "__main__":
    main(sys.argv[1])
