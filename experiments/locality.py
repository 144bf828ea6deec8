"""Locality: one fixed permutation of the 784 pixels, applied to train and test images.

Run:
    python -m experiments.locality --out results/locality                # the cpu preset (also gpu)
    python -m experiments.locality --out results/locality-fashion --dataset fashion_mnist
    python -m experiments.locality --out /tmp/quick --preset quick       # seconds, as the tests run it

Runtime (2 CPU cores, AMD EPYC, measured): cpu (3 seeds, 3 epochs) 109 s; quick 15 s cold, 4 s with
JAX's compilation cache and the executable store filled (`results/quick/reproduce.json`: cold).
Expected (MNIST): the linear model and the MLP are unchanged (their permuted runs
are the same computation with the inputs and first-layer rows permuted alike, so
they differ only by float summation order: a handful of the 10,000 test predictions
at most; measured: 0 for the linear model, 8 for the MLP); the small CNN loses about
3 points (98.95 % -> 95.60 %), because its 5×5 windows no longer see neighbouring pixels.

For the linear model and the MLP, the permuted run starts from the original
initialisation with the rows of its first weight matrix permuted like the pixels,
so the two runs are equivalent step for step; the CNN has no such equivalent.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from mnist_linear import config as configs
from mnist_linear import data, evaluate, experiment, models, plots, results, stats, tables, tasks, transforms

# Where each model keeps its first weight matrix (rows = pixels).
FIRST_LAYER = {"linear": ("w",), "mlp": ("Dense_0", "kernel")}
MODELS = ("linear", "mlp", "cnn_small")


@dataclasses.dataclass(frozen=True)
class Config(configs.TrainingConfig):
    seeds: int = configs.field(3, "models per configuration (independent seeds, one vmapped program)")
    epochs: int = configs.field(3, "training epochs")

    PRESETS: ClassVar[dict] = {"quick": configs.QUICK_TRAINING, "cpu": {}, "gpu": {}}


def permute_rows(params, path: tuple[str, ...], index, axis: int = 0):
    """`params` with the rows of the leaf at `path` reordered by `index` along `axis`."""
    paths = [tuple(k.key for k in key_path) for key_path, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    if path not in paths:
        raise KeyError(f"No parameter at {path}; the model has {paths}.")

    def reorder(key_path, leaf):
        return jnp.take(leaf, index, axis=axis) if tuple(k.key for k in key_path) == path else leaf

    return jax.tree_util.tree_map_with_path(reorder, params)


def with_permuted_first_layer(model: models.Model, path: tuple[str, ...], permutation) -> models.Model:
    """The same model, its initial first-layer rows permuted like the pixels."""
    return models.Model(lambda key: permute_rows(model.init(key), path, permutation), model.logits)


def main(argv=None) -> dict:
    run = experiment.start(Config, __doc__, argv)
    config, out, dataset, split, test = run.config, run.out, run.dataset, run.train_split, run.test_split
    # A stream apart from the models' seeds, which split key(seed) itself.
    permutation = jax.random.permutation(jax.random.fold_in(jax.random.key(config.seed), 3), data.IMAGE_SIZE ** 2)
    permute = functools.partial(transforms.permute_pixels, permutation=permutation)
    recipe = experiment.tune_linear(config, split)
    timing, records, closeness = {}, [], {}
    for name in MODELS:
        model = models.get(name)
        hparams = recipe.best if name == "linear" else config.deep_hparams
        runs = {}
        for pixels, transform in (("original", None), ("permuted", permute)):
            run_model = model
            if transform is not None and name in FIRST_LAYER:
                run_model = with_permuted_first_layer(model, FIRST_LAYER[name], permutation)
            trained = experiment.train_models(f"{name}, {pixels}", config, split, hparams, run_model,
                                              transform=transform)
            timing[f"{name}, {pixels}"] = trained.timing
            classes, timing[f"{name}, {pixels}: evaluation"] = experiment.compile_and_run(
                evaluate.seed_outputs, trained.params, test.images, apply=run_model.logits, transform=transform,
                reduce=tasks.CLASSIFICATION.reduce, models_at_once=config.models_at_once)
            classes = np.asarray(classes)
            runs[pixels] = (trained.params, classes, trained.failed)
            records += results.seed_records(trained.failed, model=name, pixels=pixels,
                                            test_accuracy=(classes == test.labels).mean(-1))
        if name in FIRST_LAYER:
            (original, original_classes, failed), (permuted, permuted_classes, permuted_failed) = (
                runs["original"], runs["permuted"])
            # Undo the permutation of the permuted run's first layer (axis 1: axis 0 is the seed).
            aligned = permute_rows(permuted, FIRST_LAYER[name], jnp.argsort(permutation), axis=1)
            # Per seed, over the seeds where neither run failed: a failed run is no evidence either way.
            kept = (failed == "") & (permuted_failed == "")
            differences = jax.tree.map(  # (S,): each seed's largest difference in this leaf
                lambda a, b: np.abs(np.asarray(a) - np.asarray(b)).reshape(len(kept), -1).max(-1), original, aligned)
            closeness[name] = {
                "max_abs_parameter_difference": float(np.max(jax.tree.leaves(differences), 0)[kept].max())
                if kept.any() else None,
                "differing_test_predictions": [int(d) if k else None for d, k in
                                               zip((original_classes != permuted_classes).sum(-1), kept)],
            }
    out.mkdir(parents=True, exist_ok=True)
    examples = jnp.asarray(dataset.test.images[:6])
    plots.digits([examples, permute(examples)], out / "permuted_digits.png",
                 title="Test digits before (top) and after (bottom) the fixed permutation")
    return experiment.finish(
        run, experiment="locality", make_tables=make_tables, records=records, timing=timing, closeness=closeness,
        group=("model", "pixels"),
        permutation=np.asarray(permutation).tolist(), linear_recipe=recipe.recipe())


def _run_title(record: dict) -> str:
    return f"{tables.TITLES[record['model']]}, {record['pixels']}"


def _welch(original: np.ndarray, permuted: np.ndarray) -> str | None:
    """Welch's t-test of the two as the table and the reading give it ('Welch's p = 0.002'), or None when a
    side has fewer than two seeds left."""
    if min(len(original), len(permuted)) < 2:
        return None
    return f"Welch's p = {stats.welch_t_test(original, permuted):.1g}"


def _same_computation(differing: int) -> str:
    """The evidence of a model whose permuted run is the original's up to float summation order."""
    differ = ("no test prediction differs" if not differing else
              f"at most {differing:,} test prediction{'s differ' if differing > 1 else ' differs'}")
    return f"the same computation up to summation order: {differ}"


def _most_differing(closeness: dict) -> int | None:
    """The most test predictions that differ between a seed's two runs, over the seeds where neither failed."""
    kept = [d for d in closeness["differing_test_predictions"] if d is not None]
    return max(kept) if kept else None


def make_tables(written: dict) -> list[tables.Table]:
    config, records, closeness = written["config"], written["records"], written["closeness"]
    rows = []
    for name in dict.fromkeys(r["model"] for r in records):
        original = results.per_seed(records, "test_accuracy", model=name, pixels="original")
        permuted = results.per_seed(records, "test_accuracy", model=name, pixels="permuted")
        if not len(original) or not len(permuted):
            note = tables.EVERY_RUN_FAILED
        elif name in closeness and _most_differing(closeness[name]) is None:
            note = "— (no seed whose two runs both succeeded)"
        elif name in closeness:
            c = closeness[name]
            note = (f"same computation: at most {_most_differing(c)} of 10,000 predictions "
                    f"differ; largest parameter difference {c['max_abs_parameter_difference']:.1e}")
        else:
            note = _welch(original, permuted) or "— (fewer than 2 seeds left)"
        change = f"{100 * (permuted.mean() - original.mean()):+.2f}" if len(original) and len(permuted) else "—"
        rows.append((tables.TITLES[name], tables.mean_std_of(original), tables.mean_std_of(permuted), change, note))
    return [tables.Table(
        caption=f"Locality on {config['dataset']}: test accuracy (%) on original and pixel-permuted images (one fixed "
                "permutation), "
                f"mean ± std over {tables.counted(config['seeds'], 'seed')}.",
        header=("model", "original", "permuted", "change (pts)", "how close"),
        rows=tuple(rows),
        notes=(f"{tables.counted(config['epochs'], 'epoch')}; the permuted linear model and MLP start from the "
               "original initialisation with first-layer rows permuted like the pixels, so only float summation order "
               f"differs. {tables.recipe_note(written['linear_recipe'], config)}; the others: rate "
               f"{config['deep_learning_rate']:g}, decay {config['deep_weight_decay']:g}. "
               f"{tables.failure_note(records, _run_title)}"
               f"Ran on {tables.machine(written['environment'])}.",),
    )]


def reading(written: dict) -> list[str]:
    """What the locality table shows, in 2–4 sentences made from the results file alone (numbers through
    `results.per_seed` and the tables' formatting): whether each model's accuracy changes when one fixed
    permutation scrambles where the pixels are, with the table's evidence for each (same computation, or Welch's p)."""
    records, closeness = written["records"], written.get("closeness", {})
    out = ["One fixed permutation of the pixels, applied to training and test images alike, scrambles which pixels "
           "are neighbours: a model that uses neighbourhoods can lose accuracy, one that treats the pixels as an "
           "unordered list cannot."]
    for name in dict.fromkeys(r["model"] for r in records):
        original = results.per_seed(records, "test_accuracy", model=name, pixels="original")
        permuted = results.per_seed(records, "test_accuracy", model=name, pixels="permuted")
        both = (f"{tables.model_name(name, start=True)}: original {tables.stated(original)}, "
                f"permuted {tables.stated(permuted)}")
        if not len(original) or not len(permuted):
            out.append(both + ".")
            continue
        moved = tables.change(original, permuted, words=("gains {} pts", "loses {} pts", "keeps its accuracy"))
        differing = _most_differing(closeness[name]) if name in closeness else None
        # None: `change` alone checks the spread
        evidence = (_same_computation(differing) if differing is not None
                    else None if name in closeness else _welch(original, permuted))
        out.append(f"{both}; it {moved}" + (f" ({evidence})." if evidence else "."))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
