"""Matplotlib helpers (Agg backend): one colour per split everywhere in a report."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
WIDTH_INCHES = 7.5
# boxplot's `vert` became `orientation` in matplotlib 3.10
_HORIZONTAL: dict[str, Any] = (
    {"orientation": "horizontal"}
    if tuple(int(p) for p in matplotlib.__version__.split(".")[:2]) >= (3, 10)
    else {"vert": False}
)


def split_colours(splits: Sequence[str]) -> dict[str, str]:
    return {split: PALETTE[n % len(PALETTE)] for n, split in enumerate(splits)}


def figure(height: float, ncols: int = 1, nrows: int = 1, **kwargs: Any) -> tuple[Figure, list[Any]]:
    """A figure of the report's width with a flat list of axes."""
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(WIDTH_INCHES, height),
        squeeze=False,
        **kwargs,
    )
    return fig, [ax for row in axes for ax in row]


def png_bytes(fig: Figure, dpi: int = 110) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def style(ax: Axes, title: str = "", xlabel: str = "", ylabel: str = "") -> None:
    if title:
        ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3, linewidth=0.5)
    ax.set_axisbelow(True)


def empty(ax: Axes, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#777777")
    ax.set_xticks([])
    ax.set_yticks([])


def grouped_barh(
    ax: Axes,
    labels: Sequence[str],
    values: dict[str, Sequence[float]],
    colours: dict[str, str],
) -> None:
    """Horizontal bars, one group per label, one bar per split (first label on top)."""
    height, rows = split_rows(len(values), len(labels))
    for positions, (split, vals) in zip(rows, values.items()):
        ax.barh(positions, vals, height=height, color=colours[split], label=split)
    label_rows(ax, labels)
    ax.invert_yaxis()


def split_rows(n_splits: int, n_labels: int) -> tuple[float, list[list[float]]]:
    """Bar height, and each split's y positions: the splits side by side within each label's row."""
    n = max(n_splits, 1)
    height = 0.8 / n
    return height, [[i + (k - (n - 1) / 2) * height for i in range(n_labels)] for k in range(n)]


def label_rows(ax: Axes, labels: Sequence[str]) -> None:
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=7)


def legend(fig: Figure, colours: dict[str, str], splits: Sequence[str]) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(color=colours[s], label=s) for s in splits]
    fig.legend(handles=handles, loc="upper right", fontsize=8, ncols=min(len(handles), 6), frameon=False)


BOX_LEGEND = "each box spans the middle half of the values, the line is the median, the whiskers reach the 5th and 95th percentiles"


def box_stats(values: Any) -> dict[str, float]:
    """What a box of a box plot shows: quartiles, median, whiskers at the 5th and 95th percentiles."""
    p5, q1, med, q3, p95 = np.percentile(values, [5, 25, 50, 75, 95])
    return {"whislo": p5, "q1": q1, "med": med, "q3": q3, "whishi": p95, "fliers": []}


def class_boxplots(
    ax: Axes,
    labels: Sequence[str],
    data: dict[str, list[Any]],
    colours: dict[str, str],
) -> None:
    """Horizontal box plots, one row per class, one box per split (first class on top)."""
    height, rows = split_rows(len(data), len(labels))
    for positions, (split, per_class) in zip(rows, data.items()):
        keep = [(p, box_stats(v)) for p, v in zip(positions, per_class) if len(v)]
        if not keep:
            continue
        parts = ax.bxp(
            [s for _, s in keep],
            positions=[p for p, _ in keep],
            widths=height * 0.85,
            patch_artist=True,
            showfliers=False,
            manage_ticks=False,
            **_HORIZONTAL,
        )
        for box in parts["boxes"]:
            box.set(facecolor=colours[split], edgecolor=colours[split], alpha=0.75)
        for line in parts["medians"]:
            line.set(color="black", linewidth=1)
    label_rows(ax, labels)
    ax.set_ylim(len(labels) - 0.5, -0.5)


def classes_title(shown: int, used: int, total: int) -> str:
    """What a plot of `shown` classes, of `used` classes in use and `total` in the dataset, shows;
    empty when it shows every class."""
    if shown >= total:
        return ""
    if shown >= used:
        return f"the {used} classes in use, of {total}"
    return f"top {shown} of {total} classes" + (f" ({used} in use)" if used < total else "")


def class_rows_height(n_classes: float, base: float = 1.2, per_class: float = 0.22, cap: float = 8.5) -> float:
    return min(base + per_class * n_classes, cap)


def split_cmap(colour: str) -> matplotlib.colors.Colormap:
    """White to the split's colour: density plots stay in the split's colour."""
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list(f"split{colour}", ["#ffffff", colour])
