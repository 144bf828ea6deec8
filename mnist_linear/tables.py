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


def variant_title(record: dict) -> str:
    """'linear + deskewing', 'small CNN (LeNet-5 layout) + shift aug. + TTA', say: a record's model title and the
    remedies its record names (preprocessing, augmentation, test-time augmentation)."""
    return (TITLES[record["model"]] + PREPROCESSING[record.get("preprocess", "none")]
            + AUGMENTATIONS[record.get("augment", "none")] + (" + TTA" if record.get("tta") else ""))


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


def counted(count: int, noun: str) -> str:
    """'1 seed', '5 seeds', '10,000 images': `count` and `noun`, plural (an added 's') unless it is 1."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def mean_std(s: Summary, scale: float = 100.0, digits: int = 2) -> str:
    """'92.61 ± 0.05' (percent by default); '92.61 (1 seed)' for a single value, whose spread is unknown."""
    if s.n == 1:
        return f"{s.mean * scale:.{digits}f} (1 seed)"
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


def stated(values, unit: str = " %", scale: float = 100.0, digits: int = 2) -> str:
    """A number in a reading, as the tables print it: `mean_std_of` with its unit ('92.59 ± 0.05 %', '45.90 %
    (1 seed)'), or `EVERY_RUN_FAILED` alone when no seed is left."""
    text = mean_std_of(values, scale, digits)
    if np.size(values) == 1:
        return text.replace(" (1 seed)", f"{unit} (1 seed)")
    return text + (unit if np.size(values) else "")


def difference(before, after, scale: float = 100.0, digits: int = 2) -> float | None:
    """The mean of `after` minus the mean of `before` (per-seed values, failed runs left out), scaled and
    rounded to the `digits` a table prints; None when either has no seed left."""
    before, after = np.asarray(before), np.asarray(after)
    if not before.size or not after.size:
        return None
    return round(scale * (float(after.mean()) - float(before.mean())), digits) + 0.0  # + 0.0: no -0.0


# How a reading qualifies a difference against the spread over seeds: no larger than it, or with no spread
# to check it against.
WITHIN_SPREAD = "within one std over seeds"
ONE_SEED = "one seed: the spread over seeds is unknown"
# How a reading ranks one mean against another without stating the difference (`rank`).
RANKS = ("above", "below", "level with", f"{WITHIN_SPREAD} of")


class Compared(NamedTuple):
    """One mean against another as a reading states it (`compare`)."""

    delta: float  # `difference`, as a table prints it
    sign: int  # delta's sign; 0 when delta prints as zero or is within the spread over seeds (no ranking)
    caveat: str  # '', `WITHIN_SPREAD`, or `ONE_SEED` (then the sign stands unchecked)


def compare(before, after, scale: float = 100.0, digits: int = 2) -> Compared | None:
    """How `after` compares with `before` (per-seed values, failed runs left out); None when either has no
    seed left. The spread is the larger standard deviation over seeds of the sides with two values or more:
    a side with one value has none to add (a deterministic baseline such as the training mean) or an
    unknown one (a single seed), and with neither side's known a nonzero difference says `ONE_SEED`."""
    delta = difference(before, after, scale, digits)
    if delta is None:
        return None
    spreads = [np.std(values, ddof=1) for values in (before, after) if np.size(values) > 1]
    if not spreads:
        return Compared(delta, int(np.sign(delta)), ONE_SEED if delta else "")
    within = bool(delta) and abs(delta) <= scale * max(spreads)
    return Compared(delta, 0 if within else int(np.sign(delta)), WITHIN_SPREAD if within else "")


def change(before, after, scale: float = 100.0, digits: int = 2,
           words: tuple[str, str, str] = ("rises by {} pts", "falls by {} pts", "stays level")) -> str:
    """How `after` compares with `before` (per-seed values, failed runs left out), as a phrase of a reading.

    The word is chosen by the `difference` as printed: `words[0]` when it is above zero, `words[1]` below,
    `words[2]` when it prints as zero; '{}' in a word takes the size of the difference. `compare`'s caveat
    follows after a comma; either side empty gives 'cannot be compared: every run failed'."""
    compared = compare(before, after, scale, digits)
    if compared is None:
        return f"cannot be compared: {EVERY_RUN_FAILED}"
    delta = compared.delta
    phrase = (words[0] if delta > 0 else words[1] if delta < 0 else words[2]).format(f"{abs(delta):.{digits}f}")
    return phrase + (f", {compared.caveat}" if compared.caveat else "")


def listed_changes(phrases) -> str:
    """`listed` phrases of `change`: a caveat that ends every one of them said once, after the last; with
    only some caveated, '; ' between them, so that no caveat reads as the next phrase's."""
    phrases = list(phrases)
    caveats = [next((c for c in (WITHIN_SPREAD, ONE_SEED) if p.endswith(f", {c}")), "") for p in phrases]
    if len(phrases) > 1 and caveats[0] and len(set(caveats)) == 1:
        return listed(p.removesuffix(f", {caveats[0]}") for p in phrases) + f", {caveats[0]}"
    return "; ".join(phrases) if any(caveats) else listed(phrases)


def rank(compared: Compared, words: tuple[str, str, str, str] = RANKS) -> str:
    """A comparison stated without its number: `words[0]` or `words[1]` (`RANKS`: 'above', 'below') only for
    a difference beyond the spread over seeds (or one `ONE_SEED` leaves unchecked), `words[2]` when it
    prints as zero, `words[3]` when it is within the spread."""
    return words[0 if compared.sign > 0 else 1 if compared.sign < 0 else 3 if compared.caveat else 2]


def standings(comparisons: dict, rival: str) -> list[tuple[str, list]]:
    """The keys of `comparisons` (key: `compare` of the rival's values and the key's; None left out) grouped
    by `rank`, in the order of `RANKS`, each group headed by its word and the rival, then 'it':
    [('above {rival}', keys), ('below it', keys), ...]."""
    ranks = {key: rank(c) for key, c in comparisons.items() if c is not None}
    groups = [(word, [key for key, w in ranks.items() if w == word]) for word in RANKS if word in ranks.values()]
    return [(f"{word} {rival if i == 0 else 'it'}", keys) for i, (word, keys) in enumerate(groups)]


def unchecked(comparisons) -> str:
    """' (one seed: the spread over seeds is unknown)' when any of `comparisons` ranks without a spread to
    check it against, for a sentence to say once; '' otherwise."""
    return f" ({ONE_SEED})" if any(c is not None and c.caveat == ONE_SEED for c in comparisons) else ""


def model_name(name: str, start: bool = False) -> str:
    """A model of `TITLES` as a reading names it: 'the small CNN (LeNet-5 layout)', 'the linear model';
    capitalised to `start` a sentence."""
    named = f"the {TITLES[name]}" + (" model" if name == "linear" else "")
    return named[0].upper() + named[1:] if start else named


def listed(items) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = list(items)
    return ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else "".join(items)


def failed_models(records: list[dict], title=lambda r: r["model"], group: tuple[str, ...] = ("model",)) -> list[str]:
    """A reading's sentence naming (by `title` of a record) each model, the records sharing the `group` fields,
    every one of whose runs failed; [] when there is none."""
    names = dict.fromkeys(title(next(r for r in records if tuple(r.get(k) for k in group) == lost))
                          for lost in results.all_failed(records, group))
    return [f"Every run of {listed(names)} failed, so the tables give no number for "
            f"{'it' if len(names) == 1 else 'them'}."] if names else []


def failure_note(records: list[dict], title=lambda r: r["model"]) -> str:
    """'Failed runs, left out of every mean: … ' naming each (with a trailing space, to stand before the
    next sentence of a note), or '' when none failed."""
    failed = results.failed(records)
    if not failed:
        return ""
    seen = dict.fromkeys(f"{title(r)} seed {r['seed']} ({r['failed']})" for r in failed)
    return "Failed runs, left out of every mean: " + "; ".join(seen) + ". "


ON_EDGE = " (on the grid's edge: the optimum may lie outside)"  # follows a recipe whose best point is on it


def grid_values(values) -> str:
    """A tuning grid's values as every note writes them: '{0.03, 0.1, 0.3, 1}'."""
    return "{" + ", ".join(f"{v:g}" for v in values) + "}"


def recipe_note(recipe: dict, config: dict) -> str:
    """How the linear model was trained, from a results file's `linear_recipe` and `config` (with the options
    that change numbers: bfloat16 products, a shared data order)."""
    edge = ON_EDGE if recipe["on_edge"] else ""
    options = "".join([", products in bfloat16 (parameters float32)" if config.get("compute_dtype", "float32")
                       != "float32" else "", ", one data order shared by every seed" if config.get("shared_order") else ""])
    return (f"The linear model: rate {recipe['learning_rate']:g}, decay {recipe['weight_decay']:g}, tuned on a "
            f"validation split over rates {grid_values(recipe['learning_rates'])} × decays "
            f"{grid_values(recipe['weight_decays'])}{edge}, {counted(config['epochs'], 'epoch')}{options}")


def machine(environment: dict) -> str:
    """'CPU (AMD EPYC ..., 2 cores)' or '1× NVIDIA H200', from a results file's `environment`."""
    if environment["platform"] == "cpu":
        return f"CPU ({environment['processor']}, {environment['cpu_count']} cores)"
    return f"{environment['device_count']}× {environment['device_kind']}"
