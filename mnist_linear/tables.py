"""Paper-style tables, rendered as Markdown and LaTeX from the same rows, and the shared wording
of their notes (model titles, the linear recipe, the machine). Imports no jax."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from mnist_linear import results
from mnist_linear.stats import Summary, summarize

# The title of each model of `models.NAMES` in tables and figures.
TITLES = {"linear": "linear", "mlp": "MLP (300 hidden)", "cnn_small": "small CNN (LeNet-5 layout)",
          "cnn_large": "larger CNN", "cnn_gap": "CNN, global pooling", "templates": "k templates per class"}
# Each augmentation's and preprocessing's one name (results files) and what it adds to a model's title.
AUGMENTATIONS = {"none": "", "shift": " + shift aug.", "mnist_c": " + MNIST-C aug.",
                 "rotate_translate": " + rotation/translation aug."}
PREPROCESSING = {"none": "", "centring": " + centring", "deskewing": " + deskewing"}


class Table(NamedTuple):
    """One paper-style table: caption, header and rows of strings, notes; `markdown()` and `latex()`."""

    caption: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...] = ()

    def markdown(self) -> str:
        lines = [f"**{self.caption}**", "", _md_row(self.header), _md_row(["---"] * len(self.header))]
        lines += [_md_row(row) for row in self.rows]
        lines += [""] + list(self.notes) if self.notes else []
        return "\n".join(lines) + "\n"

    def latex(self) -> str:
        lines = [
            r"\begin{table}[t]",
            r"\centering",
            r"\begin{tabular}{" + "l" + "r" * (len(self.header) - 1) + "}",
            r"\toprule",
            " & ".join(_tex(h) for h in self.header) + r" \\",
            r"\midrule",
        ]
        lines += [" & ".join(_tex(c) for c in row) + r" \\" for row in self.rows]
        lines += [r"\bottomrule", r"\end{tabular}"]
        caption = " ".join([self.caption, *self.notes])
        lines += [r"\caption{" + _tex(caption) + "}", r"\end{table}"]
        return "\n".join(lines) + "\n"


def _md_row(cells) -> str:
    return "| " + " | ".join(cells) + " |"


_TEX_ESCAPES = {"%": r"\%", "&": r"\&", "_": r"\_", "#": r"\#", "$": r"\$", "{": r"\{", "}": r"\}",
                "^": r"\^{}", "~": r"\~{}", "\\": r"\textbackslash{}", "±": r"$\pm$", "×": r"$\times$",
                "²": r"$^2$", "↑": r"$\uparrow$", "↓": r"$\downarrow$", "α": r"$\alpha$", "−": "-", "–": "--",
                "—": "---", "†": r"$^\dagger$", "·": r"$\cdot$", "Δ": r"$\Delta$", "…": r"\ldots{}", "°": r"$^\circ$",
                "Σ": r"$\Sigma$", "σ": r"$\sigma$", "ŷ": r"$\hat{y}$", "ȳ": r"$\bar{y}$"}


def _tex(text: str) -> str:
    out = "".join(_TEX_ESCAPES.get(c, c) for c in text)
    if not out.isascii():
        raise ValueError(f"No LaTeX for {sorted({c for c in out if not c.isascii()})} in {text!r}; add it to _TEX_ESCAPES.")
    return out


def mean_std(s: Summary, scale: float = 100.0, digits: int = 2) -> str:
    """'92.61 ± 0.05' (percent by default)."""
    return f"{s.mean * scale:.{digits}f} ± {s.std * scale:.{digits}f}"


def interval(s: Summary, scale: float = 100.0, digits: int = 2, bounds: tuple[float, float] = (0.0, 1.0)) -> str:
    """'[92.57, 92.65]': the Student-t interval, or '—' for a single value or when the interval leaves
    `bounds` (an accuracy's [0, 1]): with so few seeds a t-interval says nothing (`INTERVAL_NOTE`)."""
    if s.n < 2 or s.ci_low < bounds[0] or s.ci_high > bounds[1]:
        return "—"
    return f"[{s.ci_low * scale:.{digits}f}, {s.ci_high * scale:.{digits}f}]"


INTERVAL_NOTE = ("95% CI: Student-t interval of the mean over seeds; — where there are too few seeds for one "
                 "inside [0, 100].")
EVERY_RUN_FAILED = "every run failed"


def mean_std_of(values, scale: float = 100.0, digits: int = 2) -> str:
    """`mean_std` of the values left once failed runs are out (`results.per_seed`), or
    `EVERY_RUN_FAILED` when none is left."""
    values = np.asarray(values)
    return mean_std(summarize(values), scale, digits) if values.size else EVERY_RUN_FAILED


def failure_note(records: list[dict], title=lambda r: r["model"]) -> str:
    """'Failed runs, left out of every mean: … ' naming each (with a trailing space, to stand before the
    next sentence of a note), or '' when none failed."""
    failed = results.failed(records)
    if not failed:
        return ""
    seen = dict.fromkeys(f"{title(r)} seed {r['seed']} ({r['failed']})" for r in failed)
    return "Failed runs, left out of every mean: " + "; ".join(seen) + ". "


def recipe_note(recipe: dict, config: dict) -> str:
    """How the linear model was trained, from a results file's `linear_recipe` and `config` (with the options
    that change numbers: bfloat16 products, a shared data order)."""
    edge = " (on the grid's edge: the optimum may lie outside)" if recipe["on_edge"] else ""
    grid = lambda values: "{" + ", ".join(f"{v:g}" for v in values) + "}"  # noqa: E731
    options = "".join([", products in bfloat16 (parameters float32)" if config.get("compute_dtype", "float32")
                       != "float32" else "", ", one data order shared by every seed" if config.get("shared_order") else ""])
    return (f"The linear model: rate {recipe['learning_rate']:g}, decay {recipe['weight_decay']:g}, tuned on a "
            f"validation split over rates {grid(recipe['learning_rates'])} × decays "
            f"{grid(recipe['weight_decays'])}{edge}, {config['epochs']} epochs{options}")


def machine(environment: dict) -> str:
    """'CPU (AMD EPYC ..., 2 cores)' or '1× NVIDIA H200', from a results file's `environment`."""
    if environment["platform"] == "cpu":
        return f"CPU ({environment['processor']}, {environment['cpu_count']} cores)"
    return f"{environment['device_count']}× {environment['device_kind']}"
