"""Classification Features: one label (a class, no box) per image."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import plots
from ..stats import describe
from .base import Context, FeatureResult
from .detection import class_counts, frequency_result, grouped, shown_title, top_classes


def classification_class_frequency(ctx: Context, params: Mapping[str, Any]) -> FeatureResult | None:
    table = ctx.classifications
    if table is None:
        return None
    return frequency_result(ctx, table, params, "ClassificationClassFrequency", "images")


def classification_distribution_vs_area(ctx: Context, params: Mapping[str, Any]) -> FeatureResult | None:
    table = ctx.classifications
    if table is None or not np.isfinite(table.image_size).any():
        return None
    present = [s for s in ctx.splits if (table.split == s).any()]
    counts = class_counts(table, ctx.splits)
    shown = top_classes(counts, int(params.get("topk", ctx.top_k)))
    groups = grouped(table, table.image_size)
    stats: dict[str, Any] = {split: {} for split in present}
    for (split, c), values in sorted(groups.items(), key=lambda item: item[0][1]):
        stats[split][table.class_names[c]] = describe(values, 2)
    names = [table.class_names[c] for c in shown]
    fig, axes = plots.figure(plots.class_rows_height(len(names) * len(present) / 2 + 2))
    data = {s: [groups.get((s, int(c)), np.empty(0)) for c in shown] for s in present}
    data = {s: [v[np.isfinite(v)] for v in vs] for s, vs in data.items()}
    plots.class_boxplots(axes[0], names, data, ctx.colours)
    plots.style(axes[0], shown_title(table, counts, shown), "image size: (width + height) / 2 (px)")
    plots.legend(fig, ctx.colours, present)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return FeatureResult(
        name="ClassificationClassDistributionVsArea",
        title="Image size distribution per class",
        description=f"Image size, the mean of width and height in pixels, per class and split ({plots.BOX_LEGEND}). Classes "
        "whose images are much larger or smaller than the others, or differ between splits, let a model "
        "learn the size instead of the content.",
        stats=stats,
        notices=_size_notices(stats),
        figure=fig,
    )


def _size_notices(stats: dict[str, Any]) -> list[str]:
    notices = []
    for split, classes in stats.items():
        medians = {c: v["median"] for c, v in classes.items() if v["median"] is not None}
        if len(medians) > 1 and max(medians.values()) > 2 * min(medians.values()):
            big = max(medians, key=lambda c: medians[c])
            small = min(medians, key=lambda c: medians[c])
            notices.append(
                f"In {split}, images of {big} (median {medians[big]:g} px) are more than twice the size of "
                f"images of {small} (median {medians[small]:g} px)."
            )
    return notices
