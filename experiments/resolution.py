"""Resolution: the linear model's parameters grow with height × width; a CNN's do not.

Run:
    python -m experiments.resolution --out results/resolution                   # the cpu preset
    python -m experiments.resolution --out /tmp/quick --preset quick            # seconds, as the tests run it
    python -m experiments.resolution --out results/resolution-gpu --preset gpu  # the committed GPU tables

Runtime (measured): gpu under 4 minutes on an NVIDIA H200; cpu 191 s and quick 24 s cold, 15 s with
JAX's compilation cache and the executable store filled (`results/quick/reproduce.json`: cold), on 2 CPU
cores (AMD EPYC).
Expected (GPU settings, measured): the linear model has 7,850 -> 501,770 parameters from
28 to 224 px at the same 92.6 % accuracy; the CNN keeps 23,946 parameters at every size
(6,218 at the CPU widths) and falls from 98.7 % to 79 %, its receptive field now small
against the digit. The cpu preset (10,000 images, 4 epochs, 2 seeds, up to 112 px): the linear
model 91.1 % at every size; its narrow CNN 86 % (one seed trains poorly) falling to 58 %.

Images are upsampled bilinearly by r in `factors` (1, 2, 4, 8 with the gpu preset: up to
224 px) on the device, one batch at a time, in training and in evaluation, so no 60,000 × 224 × 224 array ever
exists. The linear model's learning rate is the tuned 28-px rate divided by r²: an
upsampled image has about r² times the squared norm, so the same rate would be an
r²-times larger step. The CNN averages its last feature map (global pooling) and
needs no such change.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from typing import ClassVar

import numpy as np

from mnist_linear import config as configs
from mnist_linear import data, evaluate, experiment, models, plots, results, tables, tasks, train, transforms

field = configs.field


@dataclasses.dataclass(frozen=True)
class Config(configs.TrainingConfig):
    seeds: int = field(2, "models per size (independent seeds, one vmapped program)")
    epochs: int = field(4, "training epochs")
    train_examples: int = field(10_000, "training images used (the first ones); 0: all")
    num_validation: int = field(2_000, "the last this-many training images form the validation split")
    # Global average pooling shrinks the gradients; 0.05 barely moves in 4 epochs.
    deep_learning_rate: float = field(0.2, "learning rate of the CNN with global pooling")
    factors: tuple[int, ...] = field((1, 2, 4), "upsampling factors r: images of 28·r px")
    cnn_widths: tuple[int, ...] = field((8, 16, 32), "channels of the CNN's three 3×3 layers")
    eval_pixels: int = field(4_000_000, "evaluation chunk: about this many pixels per seed at a time")

    PRESETS: ClassVar[dict] = {
        # Two epochs: in one, the global-pooling CNN stays at chance on 5,000 images (a failed run).
        "quick": {**configs.QUICK_TRAINING, "epochs": 2, "factors": (1, 2)},
        "cpu": {},
        "gpu": {"seeds": 5, "epochs": 5, "train_examples": 0, "num_validation": 10_000, "factors": (1, 2, 4, 8),
                "cnn_widths": (16, 32, 64)},
    }

    def check(self) -> None:
        super().check()
        if min(self.factors) < 1 or min(self.cnn_widths) < 1:
            raise ValueError(f"factors and cnn_widths must be ≥ 1, got {self.factors} and {self.cnn_widths}.")
        configs._at_least("eval_pixels", self.eval_pixels, 1)


def main(argv=None) -> dict:
    run = experiment.start(Config, __doc__, argv)
    config, out, split, test = run.config, run.out, run.train_split, run.test_split
    recipe = experiment.tune_linear(config, split)
    timing, records = {}, []
    for factor in config.factors:
        size = data.IMAGE_SIZE * factor
        resize = functools.partial(transforms.resize, factor=factor)
        batch_size = max(10, config.eval_pixels // (size * size))
        linear_hparams = train.Hyperparams(recipe.best.learning_rate / factor ** 2, recipe.best.weight_decay)
        for name, model, hparams in (
            ("linear", models.get("linear", image_size=size), linear_hparams),
            ("cnn_gap", models.get("cnn_gap", image_size=size, widths=config.cnn_widths), config.deep_hparams),
        ):
            trained = experiment.train_models(f"{name}, {size} px", config, split, hparams, model, transform=resize)
            timing[f"{name}, {size} px"] = trained.timing
            classes, timing[f"{name}, {size} px: evaluation"] = experiment.compile_and_run(
                evaluate.seed_outputs, trained.params, test.images, apply=model.logits, transform=resize,
                reduce=tasks.CLASSIFICATION.reduce, batch_size=batch_size,
                models_at_once=config.models_at_once)
            records += results.seed_records(
                trained.failed, model=name, factor=factor, image_size=size,
                parameters=models.parameter_count(experiment.first_seed(trained.params)),
                learning_rate=hparams.learning_rate,
                test_accuracy=(np.asarray(classes) == test.labels).mean(-1))
            print(f"{name} at {size} px: {timing[f'{name}, {size} px']['run_s']:.1f} s")
    out.mkdir(parents=True, exist_ok=True)
    return experiment.finish(
        run, experiment="resolution", make_tables=make_tables, write_figures=write_figures, records=records,
        timing=timing, group=("model", "image_size"), linear_recipe=recipe.recipe())


def _by_size(records, name):
    sizes = sorted({r["image_size"] for r in records})
    params = [next(r["parameters"] for r in records if r["model"] == name and r["image_size"] == s) for s in sizes]
    accuracy = [results.per_seed(records, "test_accuracy", model=name, image_size=s) for s in sizes]
    return sizes, params, accuracy


def _run_title(record: dict) -> str:
    return f"{tables.TITLES[record['model']]} at {record['image_size']} px"


def make_tables(written: dict) -> list[tables.Table]:
    config, records = written["config"], written["records"]
    sizes, linear_params, linear_acc = _by_size(records, "linear")
    _, cnn_params, cnn_acc = _by_size(records, "cnn_gap")
    rows = tuple(
        (f"{s} × {s}", f"{lp:,}", tables.mean_std_of(la), f"{cp:,}", tables.mean_std_of(ca))
        for s, lp, la, cp, ca in zip(sizes, linear_params, linear_acc, cnn_params, cnn_acc))
    return [tables.Table(
        caption=f"Parameters grow with resolution for the linear model, not for a CNN with global pooling: "
                f"test accuracy (%), mean ± std over {tables.counted(config['seeds'], 'seed')}.",
        header=("image", f"{tables.TITLES['linear']}: parameters", f"{tables.TITLES['linear']}: accuracy",
                f"{tables.TITLES['cnn_gap']}: parameters", f"{tables.TITLES['cnn_gap']}: accuracy"),
        rows=rows,
        notes=(f"Bilinear upsampling on the device per batch; {config['train_examples'] or 60000:,} training "
               f"images. {tables.recipe_note(written['linear_recipe'], config)}, at 28 px; at r × 28 px its rate "
               f"is divided by r². CNN (widths {tuple(config['cnn_widths'])}): rate "
               f"{config['deep_learning_rate']:g}, decay {config['deep_weight_decay']:g}. "
               f"{tables.failure_note(records, _run_title)}Ran on {tables.machine(written['environment'])}.",),
    )]


def reading(written: dict) -> list[str]:
    """What the table shows, in 2–4 sentences made from the results file alone (numbers through
    `results.per_seed` and the tables' formatting): how each model's parameters and accuracy move from the
    smallest image to the largest, and which model is ahead at the largest."""
    records = written["records"]
    sizes, linear_params, linear_acc = _by_size(records, "linear")
    _, cnn_params, cnn_acc = _by_size(records, "cnn_gap")
    first, last = f"{sizes[0]} × {sizes[0]}", f"{sizes[-1]} × {sizes[-1]}"
    out = []
    for name, params, acc in (("linear", linear_params, linear_acc), ("cnn_gap", cnn_params, cnn_acc)):
        counted = (f"stay at {params[0]:,}" if len(set(params)) == 1 else
                   f"{'grow' if params[-1] > params[0] else 'shrink'} from {params[0]:,} to {params[-1]:,}")
        moved = (f"{tables.change(acc[0], acc[-1])} ({tables.stated(acc[0])} to {tables.stated(acc[-1])})"
                 if len(acc[0]) and len(acc[-1]) else
                 f"at {first} px: {tables.stated(acc[0])}; at {last} px: {tables.stated(acc[-1])}")
        out.append(f"{tables.model_name(name, start=True)}: from {first} to {last} px its parameters {counted} and its "
                   f"accuracy {moved}.")
    for i, size in ((0, first), (-1, last)):
        if len(cnn_acc[i]) and len(linear_acc[i]):
            out.append(f"At {size} px the linear model is " + tables.change(cnn_acc[i], linear_acc[i], words=(
                "{} pts above the CNN", "{} pts below the CNN", "level with the CNN")) + ".")
    # Only a change beyond the spread over seeds, either way, shows that scale matters; with one seed the
    # change's own phrase says the spread is unknown.
    scaled = tables.compare(cnn_acc[0], cnn_acc[-1])
    if len(set(cnn_params)) == 1 and scaled is not None and scaled.sign and not scaled.caveat:
        out.append("A parameter count that stays fixed does not make the CNN indifferent to the image's scale.")
    return out + tables.failed_models(records, _run_title, ("model", "image_size"))


def write_figures(written: dict, out) -> None:
    records = written["records"]
    sizes, linear_params, linear_acc = _by_size(records, "linear")
    _, cnn_params, cnn_acc = _by_size(records, "cnn_gap")
    plots.lines(sizes, {"linear": linear_params, "CNN, global pooling": cnn_params}, out / "parameters.png",
                x_label="image side (px)", y_label="parameters", log_y=True,
                title="Parameters against resolution")
    mean = lambda a: 100 * a.mean() if len(a) else np.nan  # noqa: E731  (every run failed: no point drawn)
    plots.lines(sizes, {"linear": [mean(a) for a in linear_acc], "CNN, global pooling":
                        [mean(a) for a in cnn_acc]}, out / "accuracy.png",
                x_label="image side (px)", y_label="test accuracy (%)", title="Accuracy against resolution")


if __name__ == "__main__":
    main(sys.argv[1:])
