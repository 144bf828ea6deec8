"""Figures: templates, heatmaps, points, lines and scatter plots, written atomically as PNG."""

from __future__ import annotations

import os
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # no display: figures go to files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mnist_linear import results  # noqa: E402


def templates(
    images,
    labels: Sequence[str],
    path: str | os.PathLike,
    title: str = "",
    columns: int | None = None,
) -> float:
    """A grid of templates `(K, H, W)`, diverging colormap centred at 0, one label each.

    The colour limit is the 99.5th percentile of the finite |values|; non-finite
    weights are drawn blank and the title says how many there are. Returns the limit.
    """
    images = np.asarray(images, np.float64)
    columns = columns or len(images)
    rows = -(-len(images) // columns)
    finite = np.isfinite(images)
    if not finite.all():
        title = f"{(~finite).sum()} weights are inf or nan (blank). {title}"
    # A few rarely inked edge pixels carry the largest weights; a robust limit keeps the shapes visible.
    limit = float(np.percentile(np.abs(images[finite]), 99.5)) if finite.any() else 1.0
    limit = limit or 1.0
    figure, axes = plt.subplots(rows, columns, figsize=(1.3 * columns, 1.5 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, label in zip(axes.flat, images, labels):
        shown = ax.imshow(image, cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(label, fontsize=9)
    figure.colorbar(shown, ax=axes, shrink=0.8, label="weight", extend="both")
    if title:
        figure.suptitle(title)
    results.save_figure(figure, path)
    plt.close(figure)
    return limit


def heatmap(
    values,
    x_ticks: Sequence,
    y_ticks: Sequence,
    path: str | os.PathLike,
    *,
    x_label: str,
    y_label: str,
    title: str = "",
    colorbar_label: str = "accuracy (%)",
) -> None:
    """A heatmap of `values` `(len(y_ticks), len(x_ticks))`, each cell annotated."""
    values = np.asarray(values)
    figure, ax = plt.subplots(figsize=(0.55 * len(x_ticks) + 2.5, 0.5 * len(y_ticks) + 1.5))
    shown = ax.imshow(values, cmap="viridis", origin="upper")
    ax.set_xticks(range(len(x_ticks)), [str(t) for t in x_ticks])
    ax.set_yticks(range(len(y_ticks)), [str(t) for t in y_ticks])
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    middle = (np.nanmax(values) + np.nanmin(values)) / 2 if np.isfinite(values).any() else 0.0
    for (i, j), v in np.ndenumerate(values):
        if not np.isfinite(v):  # every run behind this cell failed: left blank
            continue
        ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7, color="black" if v > middle else "white")
    figure.colorbar(shown, ax=ax, label=colorbar_label)
    if title:
        ax.set_title(title)
    results.save_figure(figure, path)
    plt.close(figure)


def points(labels: Sequence[str], values: Sequence, path: str | os.PathLike, *, y_label: str, title: str = "",
           x_values: Sequence | None = None, x_label: str = "") -> None:
    """One column of points per label (one point per seed) with its mean marked."""
    figure, ax = plt.subplots(figsize=(1.6 * len(labels) + 2, 3.8))
    positions = np.arange(len(labels)) if x_values is None else np.asarray(x_values)
    for x, v in zip(positions, values):
        v = np.asarray(v)
        if not v.size:  # every run of this one failed: nothing to draw, say so
            ax.text(x, 0.5, "every run\nfailed", ha="center", va="center", transform=ax.get_xaxis_transform())
            continue
        ax.scatter(np.full(v.shape, x), v, s=18, alpha=0.7)
        ax.hlines(v.mean(), x - 0.2, x + 0.2, color="black")
    ax.set_xticks(positions, labels, rotation=15)
    ax.set_ylabel(y_label)
    if x_label:
        ax.set_xlabel(x_label)
    ax.grid(axis="y", alpha=0.3)
    if title:
        ax.set_title(title)
    results.save_figure(figure, path)
    plt.close(figure)


def digits(rows: Sequence, path: str | os.PathLike, title: str = "", row_labels: Sequence[str] = (),
           frame: bool = False) -> None:
    """Rows of grey images, each row `(K, H, W)`; `row_labels` name the rows; `frame` draws each canvas's
    edge (so a shift or a shrink shows)."""
    rows = [np.asarray(r) for r in rows]
    columns = max(len(r) for r in rows)
    figure, axes = plt.subplots(len(rows), columns, figsize=(1.2 * columns + 0.8 * bool(row_labels),
                                                             1.2 * len(rows) + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(frame)
            spine.set_color("0.6")
    for row_axes, images in zip(axes, rows):
        for ax, image in zip(row_axes, images):
            ax.imshow(image, cmap="gray_r")
        for ax in row_axes[len(images):]:
            ax.set_visible(False)
    for ax, label in zip(axes[:, 0], row_labels):
        ax.set_ylabel(label, fontsize=9)
    if title:
        figure.suptitle(title, fontsize=9)
    results.save_figure(figure, path)
    plt.close(figure)


def lines(x: Sequence, series: dict, path: str | os.PathLike, *, x_label: str, y_label: str, title: str = "",
          log_y: bool = False) -> None:
    """One line with markers per named series over the shared `x`."""
    line_panels(x, {title: series} if title else {"": series}, path, x_label=x_label, y_label=y_label,
                log_y=log_y)


def line_panels(x: Sequence, panels: dict, path: str | os.PathLike, *, x_label: str, y_label: str,
                title: str = "", log_y: bool = False, columns: int | None = None) -> None:
    """One panel per {panel title: {series name: values over `x`}}, `columns` to a row (default: all);
    one legend, shared y."""
    columns = columns or len(panels)
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns + 0.8, 3.4 * rows + 0.2), squeeze=False,
                                sharey=True)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (panel_title, series) in zip(axes.flat, panels.items()):
        for name, values in series.items():
            ax.plot(x, values, marker="o", label=name)
        ax.set_xticks(list(x), [str(v) for v in x])
        if log_y:
            ax.set_yscale("log")
        ax.set_xlabel(x_label)
        ax.grid(alpha=0.3)
        if panel_title:
            ax.set_title(panel_title)
    for ax in axes[:, 0]:
        ax.set_ylabel(y_label)
    if len(panels) == 1:
        axes.flat[0].legend()
    else:
        axes[0, -1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    results.save_figure(figure, path)
    plt.close(figure)


def scatter(panels: Sequence[dict], path: str | os.PathLike, title: str = "", max_points: int = 2000) -> None:
    """Predicted against true, one panel per target, the identity line dashed.

    Each panel: {"title", "units", "true": `(N,)`, "predicted": {name: `(N,)`}}; the first
    `max_points` images are drawn (the same ones in every series).
    """
    figure, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.6), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        true = np.asarray(panel["true"], np.float64)[:max_points]
        for name, predicted in panel["predicted"].items():
            ax.scatter(true, np.asarray(predicted, np.float64)[:max_points], s=3, alpha=0.35, label=name)
        low, high = np.nanpercentile(true, [0.5, 99.5])
        ax.plot([low, high], [low, high], "k--", linewidth=1)
        ax.set_xlabel(f"true ({panel['units']})")
        ax.set_ylabel(f"predicted ({panel['units']})")
        ax.set_title(panel["title"], fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(markerscale=4, fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    results.save_figure(figure, path)
    plt.close(figure)
