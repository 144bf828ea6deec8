"""Resolution: the linear model's parameters grow with height × width; a CNN's do not.

Run:
    python -m experiments.resolution --out results/resolution
    python -m experiments.resolution --out /tmp/quick --quick    # seconds, as the tests run it
    # On a GPU, the bigger settings:
    python -m experiments.resolution --out results/resolution-gpu --seeds 5 --epochs 5 --train-examples 0 --num-validation 10000 --cnn-widths 16 32 64

Runtime: the GPU settings took under 4 minutes on an H200 (measured). The CPU defaults
(2 seeds, 4 epochs, 2,000 training images) were not run end to end; the CNN at 224 × 224
dominates them.
Expected (GPU settings, measured): the linear model has 7,850 -> 501,770 parameters from
28 to 224 px at the same 92.6 % accuracy; the CNN keeps 23,946 parameters at every size
(6,218 at the CPU widths) and falls from 98.7 % to 79 %, its receptive field now small
against the digit.

Images are upsampled bilinearly by r ∈ {1, 2, 4, 8} (28 -> 224 px) on the device, one
batch at a time, in training and in evaluation, so no 60,000 × 224 × 224 array ever
exists. The linear model's learning rate is the tuned 28-px rate divided by r²: an
upsampled image has about r² times the squared norm, so the same rate would be an
r²-times larger step. The CNN averages its last feature map (global pooling) and
needs no such change.
"""

from __future__ import annotations

import dataclasses
import functools
import sys

import jax

from mnist_linear import data, experiment, models, plots, stats, tables, train


@dataclasses.dataclass(frozen=True)
class Config(experiment.DeepTrainingConfig):
    seeds: int = 2
    epochs: int = 4
    train_examples: int = 2_000
    num_validation: int = 500
    deep_learning_rate: float = 0.2  # global average pooling shrinks the gradients; 0.05 barely moves in 4 epochs
    factors: tuple[int, ...] = (1, 2, 4, 8)
    cnn_widths: tuple[int, ...] = (8, 16, 32)
    eval_pixels: int = 4_000_000  # evaluation chunk: about this many pixels per seed at a time


QUICK = {**experiment.QUICK_TRAINING, "factors": (1, 2), "cnn_widths": (4, 8, 8)}


def upsample(images: jax.Array, factor: int) -> jax.Array:
    """Bilinear upsampling `(B, H, W)` -> `(B, factor·H, factor·W)`."""
    if factor == 1:
        return images
    height, width = images.shape[-2:]
    return jax.image.resize(images, (*images.shape[:-2], factor * height, factor * width), "linear")


def main(argv=None) -> dict:
    config, out = experiment.parse_config(Config, QUICK, __doc__, argv)
    dataset = data.load(config.dataset, source=config.source)
    split = experiment.training_split(config, dataset)
    tuned = experiment.tune_linear(config, split).best
    timing, records = {}, []
    for factor in config.factors:
        size = data.IMAGE_SIZE * factor
        resize = functools.partial(upsample, factor=factor)
        batch_size = max(10, config.eval_pixels // (size * size))
        linear_hparams = train.Hyperparams(tuned.learning_rate / factor ** 2, tuned.weight_decay)
        for name, model, hparams in (
            ("linear", models.get("linear", image_size=size), linear_hparams),
            ("cnn_gap", models.get("cnn_gap", image_size=size, widths=config.cnn_widths), config.deep_hparams),
        ):
            (params, log), timing[f"{name}, {size} px"] = experiment.train_models(
                config, split, hparams, model, augment=lambda _, x, resize=resize: resize(x))
            records += [{"model": name, "factor": factor, "image_size": size, **r} for r in experiment.seed_records(
                log, parameters=models.parameter_count(experiment.first_seed(params)),
                learning_rate=hparams.learning_rate,
                test_accuracy=experiment.score(model.logits, params, dataset.test, resize, batch_size))]
            print(f"{name} at {size} px: {timing[f'{name}, {size} px']['run_s']:.1f} s")
    out.mkdir(parents=True, exist_ok=True)
    return experiment.finish(out, make_tables=make_tables, write_figures=write_figure, experiment="resolution",
                             config=config, dataset=dataset, records=records, timing=timing,
                             tuned=tuned._asdict())


def _by_size(records, name):
    sizes = sorted({r["image_size"] for r in records})
    params = [next(r["parameters"] for r in records if r["model"] == name and r["image_size"] == s) for s in sizes]
    accuracy = [experiment.finite(records, "test_accuracy", model=name, image_size=s) for s in sizes]
    return sizes, params, accuracy


def make_tables(written: dict) -> list[tables.Table]:
    config, records = written["config"], written["records"]
    sizes, linear_params, linear_acc = _by_size(records, "linear")
    _, cnn_params, cnn_acc = _by_size(records, "cnn_gap")
    rows = tuple(
        (f"{s} × {s}", f"{lp:,}", tables.mean_std(stats.summarize(la)), f"{cp:,}",
         tables.mean_std(stats.summarize(ca)))
        for s, lp, la, cp, ca in zip(sizes, linear_params, linear_acc, cnn_params, cnn_acc))
    return [tables.Table(
        caption=f"Parameters grow with resolution for the linear model, not for a CNN with global pooling: "
                f"test accuracy (%), mean ± std over {config['seeds']} seeds.",
        header=("image", "linear: parameters", "linear: accuracy", "CNN (global pool): parameters",
                "CNN: accuracy"),
        rows=rows,
        notes=(f"Bilinear upsampling on the device per batch; {config['train_examples'] or 60000:,} training "
               f"images, {config['epochs']} epochs. Linear: rate {written['tuned']['learning_rate']:g} / r², decay "
               f"{written['tuned']['weight_decay']:g}; CNN (widths {tuple(config['cnn_widths'])}): rate "
               f"{config['deep_learning_rate']:g}, decay {config['deep_weight_decay']:g}. "
               f"Ran on {experiment.machine(written['environment'])}.",),
    )]


def write_figure(written: dict, out) -> None:
    records = written["records"]
    sizes, linear_params, linear_acc = _by_size(records, "linear")
    _, cnn_params, cnn_acc = _by_size(records, "cnn_gap")
    plots.lines(sizes, {"linear": linear_params, "CNN, global pooling": cnn_params}, out / "parameters.png",
                x_label="image side (px)", y_label="parameters", log_y=True,
                title="Parameters against resolution")
    plots.lines(sizes, {"linear": [100 * a.mean() for a in linear_acc], "CNN, global pooling":
                        [100 * a.mean() for a in cnn_acc]}, out / "accuracy.png",
                x_label="image side (px)", y_label="test accuracy (%)", title="Accuracy against resolution")


if __name__ == "__main__":
    main(sys.argv[1:])
