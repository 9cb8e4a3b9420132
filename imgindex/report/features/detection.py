"""Object Detection Features, computed from the labels table (boxes normalised to the image)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import plots
from ..db import LabelTable
from ..stats import describe, number, percent
from .base import Context, FeatureResult

TINY_AREA = 0.001  # fraction of the image


def class_counts(table: LabelTable, splits: list[str]) -> dict[str, np.ndarray]:
    n = len(table.class_names)
    return {s: np.bincount(table.cls[table.split == s], minlength=n) for s in splits}


def top_classes(counts: dict[str, np.ndarray], k: int) -> np.ndarray:
    """Indices of the k most frequent classes over all splits (ties: lower index first)."""
    total = np.sum(list(counts.values()), axis=0) if counts else np.zeros(0, dtype=np.int64)
    order = np.argsort(-total, kind="stable")
    return order[total[order] > 0][:k]


def shown_title(table: LabelTable, counts: dict[str, np.ndarray], shown: np.ndarray) -> str:
    """The title of a plot of the `shown` classes: how many of the dataset's it shows."""
    used = len(top_classes(counts, len(table.class_names)))
    return plots.classes_title(len(shown), used, len(table.class_names))


def _top_k(ctx: Context, params: Mapping[str, Any]) -> int:
    return int(params.get("topk", ctx.top_k))


def _boxes(ctx: Context) -> LabelTable | None:
    return ctx.boxes


def frequency_result(ctx: Context, table: LabelTable, params: Mapping[str, Any], name: str, what: str) -> FeatureResult:
    counts = class_counts(table, ctx.splits)
    shown = top_classes(counts, _top_k(ctx, params))
    names = [table.class_names[i] for i in shown]
    stats = {s: {table.class_names[i]: int(c[i]) for i in np.flatnonzero(c)} for s, c in counts.items()}
    values = {s: 100 * c[shown] / max(c.sum(), 1) for s, c in counts.items() if c.sum()}
    fig, axes = plots.figure(plots.class_rows_height(len(names) * max(len(values), 1) / 2 + 2))
    plots.grouped_barh(axes[0], names, values, ctx.colours)
    plots.style(axes[0], shown_title(table, counts, shown), f"share of the split's {what} (%)")
    axes[0].legend(fontsize=8, frameon=False, loc="lower right")
    fig.tight_layout()
    hidden = len(top_classes(counts, len(table.class_names))) - len(shown)
    description = (
        f"Number of {what} of each class, as a share of all {what} of the split, so that splits of "
        "different sizes compare. The full counts are in summary.json."
    )
    if hidden > 0:
        description += f" The plot shows the {len(shown)} most frequent classes; {hidden} more are in summary.json."
    return FeatureResult(
        name=name,
        title="Class Frequency",
        description=description,
        stats=stats,
        notices=_frequency_notices(counts, table.class_names, what),
        figure=fig,
    )


def _frequency_notices(counts: dict[str, np.ndarray], names: list[str], what: str) -> list[str]:
    notices = []
    used = {s: c for s, c in counts.items() if c.sum()}
    if len(used) > 1:
        first, *rest = used
        for s in rest:
            missing = [names[i] for i in np.flatnonzero((used[first] > 0) & (used[s] == 0))]
            extra = [names[i] for i in np.flatnonzero((used[first] == 0) & (used[s] > 0))]
            if missing:
                notices.append(f"{len(missing)} class(es) of {first} never appear in {s}: {', '.join(missing[:10])}.")
            if extra:
                notices.append(f"{len(extra)} class(es) of {s} never appear in {first}: {', '.join(extra[:10])}.")
    for s, c in used.items():
        present = c[c > 0]
        if len(present) > 1 and present.max() > 20 * present.min():
            notices.append(
                f"Classes of {s} are imbalanced: the most frequent has {present.max()} {what}, the rarest {present.min()}."
            )
    return notices


def detection_class_frequency(ctx: Context, params: Mapping[str, Any]) -> FeatureResult | None:
    table = _boxes(ctx)
    return None if table is None else frequency_result(ctx, table, params, "DetectionClassFrequency", "boxes")


def detection_boxes_per_image(ctx: Context, params: Mapping[str, Any]) -> FeatureResult | None:
    table = _boxes(ctx)
    if table is None:
        return None
    stats: dict[str, Any] = {}
    per_split: dict[str, np.ndarray] = {}
    for split in ctx.splits:
        m = table.split == split
        _, counts = np.unique(table.image[m], return_counts=True)
        empty = max(ctx.image_count(split) - len(counts), 0)
        per_image = np.concatenate([np.zeros(empty, dtype=np.int64), counts])
        per_split[split] = per_image
        values, numbers = np.unique(per_image, return_counts=True)
        stats[split] = {
            **describe(per_image, 2),
            "images_without_boxes": int(empty),
            "histogram": {str(int(v)): int(n) for v, n in zip(values, numbers)},
        }
    fig = _count_histogram(ctx, per_split, "boxes in the image")
    notices = [
        f"{v['images_without_boxes']} of {v['count']} images of {s} ({percent(v['images_without_boxes'], v['count'])}) have no box."
        for s, v in stats.items()
        if v["images_without_boxes"]
    ]
    notices += [f"An image of {s} holds {v['max']:g} boxes." for s, v in stats.items() if (v["max"] or 0) > 100]
    return FeatureResult(
        name="DetectionBoundingBoxPerImageCount",
        title="Distribution of Bounding Box per image",
        description="How many boxes each image holds, counting images without any box as 0. "
        "The last bar collects the images with more boxes than the axis shows.",
        stats=stats,
        notices=notices,
        figure=fig,
    )


def _count_histogram(ctx: Context, per_split: dict[str, np.ndarray], xlabel: str) -> Any:
    fig, axes = plots.figure(2.6)
    ax = axes[0]
    present = [s for s in ctx.splits if per_split[s].size]
    top = int(max((np.percentile(per_split[s], 99) for s in present), default=0)) + 1
    top = max(min(top, 60), 2)
    edges = np.arange(top + 2) - 0.5
    width = 0.8 / max(len(present), 1)
    for k, split in enumerate(present):
        counts, _ = np.histogram(np.minimum(per_split[split], top), bins=edges)
        x = np.arange(top + 1) + (k - (len(present) - 1) / 2) * width
        ax.bar(x, 100 * counts / counts.sum(), width=width, color=ctx.colours[split], label=split)
    plots.style(ax, "", xlabel + f" (last bar: {top} or more)", "share of images (%)")
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def grouped(table: LabelTable, values: np.ndarray) -> dict[tuple[str, int], np.ndarray]:
    """values split by (split, class) with one sort instead of a mask per group."""
    _, codes = np.unique(table.split, return_inverse=True)
    key = codes.astype(np.int64) * (len(table.class_names) + 1) + table.cls
    order = np.argsort(key, kind="stable")
    cuts = np.flatnonzero(np.diff(key[order])) + 1
    out = {}
    for chunk in np.split(order, cuts):
        if chunk.size:
            out[(str(table.split[chunk[0]]), int(table.cls[chunk[0]]))] = values[chunk]
    return out


def _per_class(groups: dict[tuple[str, int], np.ndarray], split: str, shown: np.ndarray) -> list[np.ndarray]:
    return [groups.get((split, int(c)), np.empty(0)) for c in shown]


def _per_class_stats(table: LabelTable, groups: dict[tuple[str, int], np.ndarray], splits: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {split: {} for split in splits if (table.split == split).any()}
    for (split, c), values in sorted(groups.items(), key=lambda item: item[0][1]):
        out[split][table.class_names[c]] = describe(values)
    return out


def _class_box_figure(
    ctx: Context,
    table: LabelTable,
    groups: dict[tuple[str, int], np.ndarray],
    shown: np.ndarray,
    xlabel: str,
    log: bool,
) -> Any:
    """Box plots of the `shown` classes, one row per class, one box per split."""
    names = [table.class_names[c] for c in shown]
    present = [s for s in ctx.splits if (table.split == s).any()]
    fig, axes = plots.figure(plots.class_rows_height(len(names) * max(len(present), 1) / 2 + 2))
    data = {s: _per_class(groups, s, shown) for s in present}
    plots.class_boxplots(axes[0], names, data, ctx.colours)
    if log:
        axes[0].set_xscale("log")
    plots.style(axes[0], shown_title(table, class_counts(table, ctx.splits), shown), xlabel)
    plots.legend(fig, ctx.colours, present)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def box_area(table: LabelTable) -> np.ndarray:
    area = table.area.copy()
    missing = ~np.isfinite(area)
    area[missing] = table.box[missing, 2] * table.box[missing, 3]
    return area


def detection_box_area(ctx: Context, params: Mapping[str, Any]) -> FeatureResult | None:
    table = _boxes(ctx)
    if table is None:
        return None
    area = 100 * box_area(table)
    shown = top_classes(class_counts(table, ctx.splits), _top_k(ctx, params))
    groups = grouped(table, area)
    stats = _per_class_stats(table, groups, ctx.splits)
    notices = []
    for split in ctx.splits:
        m = table.split == split
        tiny = int((area[m] < 100 * TINY_AREA).sum())
        if tiny:
            notices.append(
                f"{tiny} box(es) of {split} ({percent(tiny, int(m.sum()))}) cover less than 0.1% of their image."
            )
    return FeatureResult(
        name="DetectionBoundingBoxArea",
        title="Distribution of Bounding Box Area",
        description="Box area as a percentage of the image area, per class and split (logarithmic axis; "
        f"{plots.BOX_LEGEND}). Classes whose sizes differ "
        "between splits are learnt at one scale and evaluated at another.",
        stats=stats,
        notices=notices,
        figure=_class_box_figure(
            ctx,
            table,
            {k: np.maximum(v, 1e-4) for k, v in groups.items()},
            shown,
            "box area (% of the image)",
            log=True,
        ),
    )


def detection_box_size(ctx: Context, params: Mapping[str, Any]) -> FeatureResult | None:
    table = _boxes(ctx)
    if table is None:
        return None
    w, h = 100 * table.box[:, 2], 100 * table.box[:, 3]
    present = [s for s in ctx.splits if (table.split == s).any()]
    fig, axes = plots.figure(3.0, ncols=max(len(present), 1), sharex=True, sharey=True)
    stats: dict[str, Any] = {}
    upper = float(min(100.0, max(np.percentile(np.concatenate([w, h]), 99.5) * 1.15, 1.0)))
    edges = np.linspace(0, upper, 41)
    for ax, split in zip(axes, present):
        m = table.split == split
        stats[split] = {"width": describe(w[m], 2), "height": describe(h[m], 2)}
        counts, _, _ = np.histogram2d(np.clip(w[m], 0, upper), np.clip(h[m], 0, upper), bins=[edges, edges])
        ax.pcolormesh(edges, edges, np.log1p(counts.T), cmap=plots.split_cmap(ctx.colours[split]), shading="flat")
        plots.style(
            ax, f"{split} ({int(m.sum())} boxes)", "width (% of image)", "height (% of image)" if ax is axes[0] else ""
        )
        for side in ("bottom", "top", "left", "right"):
            ax.spines[side].set_color(ctx.colours[split])
            ax.spines[side].set_linewidth(2)
    fig.tight_layout()
    notices = [
        f"{int(((w[m] < 1) | (h[m] < 1)).sum())} box(es) of {s} are narrower or lower than 1% of the image."
        for s in present
        for m in [table.split == s]
        if ((w[m] < 1) | (h[m] < 1)).any()
    ]
    return FeatureResult(
        name="DetectionBoundingBoxSize",
        title="Distribution of Bounding Box Width and Height",
        description="Width and height of the boxes relative to their image, one panel per split (framed "
        "in the split's colour); darker cells hold more boxes (logarithmic shading). The axes end where 99.5% "
        "of the boxes do; larger boxes are drawn at the edge.",
        stats=stats,
        notices=notices,
        figure=fig,
    )


def detection_classes_per_image(ctx: Context, params: Mapping[str, Any]) -> FeatureResult | None:
    table = _boxes(ctx)
    if table is None:
        return None
    per, values = _class_counts_per_image(table)
    shown = top_classes(class_counts(per, ctx.splits), _top_k(ctx, params))
    groups = grouped(per, values)
    stats = _per_class_stats(per, groups, ctx.splits)
    crowded = [
        f"Up to {int(v['max'])} {c} in one image of {s}."
        for s, cs in stats.items()
        for c, v in cs.items()
        if (v["max"] or 0) >= 50
    ][:5]
    return FeatureResult(
        name="DetectionClassesPerImageCount",
        title="Distribution of Class Frequency per Image",
        description="For the images that contain a class: how many boxes of that class they hold, per split "
        f"({plots.BOX_LEGEND}).",
        stats=stats,
        notices=crowded,
        figure=_class_box_figure(
            ctx, per, groups, shown, "boxes of the class per image (images holding it)", log=False
        ),
    )


def _class_counts_per_image(table: LabelTable) -> tuple[LabelTable, np.ndarray]:
    """One row per (split, image, class) present, with the number of boxes as value."""
    _, codes = np.unique(table.split, return_inverse=True)
    image = table.image - table.image.min() if len(table) else table.image
    n_cls = len(table.class_names) + 1
    key = (codes.astype(np.int64) * (int(image.max(initial=0)) + 1) + image) * n_cls + table.cls
    unique, first, counts = np.unique(key, return_index=True, return_counts=True)
    n = len(unique)
    per = LabelTable(
        split=table.split[first],
        image=table.image[first],
        cls=table.cls[first],
        box=np.empty((n, 4)),
        area=np.empty(n),
        image_size=np.empty(n),
        class_names=table.class_names,
        class_ids=table.class_ids,
    )
    return per, counts.astype(np.float64)


def pair_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a[i] and b[i], both (n, 4) xyxy."""
    iw = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = iw * ih
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def max_iou(image: np.ndarray, cls: np.ndarray, xyxy: np.ndarray, same_class: bool) -> np.ndarray:
    """For each box, its largest IoU with another box of the same image (and class, if asked).

    Boxes are swept left to right within each image: box i meets the boxes after it in order of
    their left edge until one starts right of box i's right edge; later ones cannot overlap it."""
    keys = (xyxy[:, 0], cls, image) if same_class else (xyxy[:, 0], image)
    order = np.lexsort(keys)
    img, c, b = image[order], cls[order], xyxy[order]
    best = np.zeros(len(order))
    first = np.arange(max(len(order) - 1, 0))
    step = 1
    while first.size:
        second = first + step
        same = (img[first] == img[second]) & (b[second, 0] < b[first, 2])
        if same_class:
            same &= c[first] == c[second]
        first, second = first[same], second[same]
        iou = pair_iou(b[first], b[second])
        best[first] = np.maximum(best[first], iou)  # indices are unique within one step
        best[second] = np.maximum(best[second], iou)
        step += 1
        first = first[first + step < len(order)]
    out = np.empty_like(best)
    out[order] = best
    return out


def xyxy(box: np.ndarray) -> np.ndarray:
    cx, cy, w, h = box.T
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def detection_box_iou(ctx: Context, params: Mapping[str, Any]) -> FeatureResult | None:
    table = _boxes(ctx)
    if table is None:
        return None
    bins = int(params.get("num_bins", 10))
    same_class = not bool(params.get("class_agnostic", True))
    thresholds = np.linspace(0, 1, bins + 1)[:-1]
    best = max_iou(table.image, table.cls, xyxy(table.box), same_class)
    shown = top_classes(class_counts(table, ctx.splits), _top_k(ctx, params))
    present = [s for s in ctx.splits if (table.split == s).any()]
    stats: dict[str, Any] = {}
    grids: dict[str, np.ndarray] = {}
    n_cls = len(table.class_names)
    for split in present:
        m = table.split == split
        cls, val = table.cls[m], best[m]
        total = np.bincount(cls, minlength=n_cls)
        above = np.array([np.bincount(cls[val > t], minlength=n_cls) for t in thresholds]).T  # (classes, thresholds)
        all_above = above.sum(axis=0)
        shares = np.vstack([above[shown], all_above[None, :]]) * 100.0
        grids[split] = shares / np.maximum(np.append(total[shown], total.sum())[:, None], 1)
        stats[split] = {
            "thresholds": [number(t) for t in thresholds],
            "boxes_above_threshold": {table.class_names[c]: above[c].tolist() for c in np.flatnonzero(total)},
            "All classes": all_above.tolist(),
        }
    labels = [table.class_names[c] for c in shown] + ["All classes"]
    fig = _iou_figure(ctx, grids, labels, thresholds, shown_title(table, class_counts(table, ctx.splits), shown))
    notices = []
    for split in present:
        dup = int((best[table.split == split] > 0.9).sum())
        if dup:
            notices.append(
                f"{dup} box(es) of {split} overlap another box with IoU above 0.9: probably duplicated annotations."
            )
    kind = "boxes of the same class" if same_class else "all boxes, whatever their class"
    return FeatureResult(
        name="DetectionBoundingBoxIoU",
        title="Intersection of Bounding Boxes",
        description="Share of boxes (%) whose largest Intersection over Union with another box of the same "
        f"image exceeds each threshold, per class; {kind} are compared. High shares at high thresholds "
        "point at duplicated or heavily overlapping annotations.",
        stats=stats,
        notices=notices,
        figure=fig,
    )


def _iou_figure(
    ctx: Context, grids: dict[str, np.ndarray], labels: list[str], thresholds: np.ndarray, title: str
) -> Any:
    fig, axes = plots.figure(plots.class_rows_height(len(labels)), ncols=max(len(grids), 1), sharey=True)
    if title:
        fig.suptitle(title, fontsize=10)
    image = None
    for ax, (split, grid) in zip(axes, grids.items()):
        image = ax.imshow(grid, aspect="auto", cmap="Reds", vmin=0, vmax=100)
        if grid.size <= 160:
            for (i, j), v in np.ndenumerate(grid):
                ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=6, color="white" if v > 60 else "black")
        ax.set_xticks(range(len(thresholds)))
        ax.set_xticklabels([f">{t:.1f}" for t in thresholds], rotation=90, fontsize=7)
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels(labels, fontsize=7)
        ax.set_title(split, fontsize=10, color=ctx.colours[split])
        ax.set_xlabel("IoU", fontsize=9)
    fig.tight_layout()
    if image is not None:
        bar = fig.colorbar(image, ax=axes, shrink=0.5, pad=0.02)
        bar.set_label("% of the class's boxes", fontsize=8)
        bar.ax.tick_params(labelsize=7)
    return fig


def coverage(box: np.ndarray, shape: int) -> np.ndarray:
    """How many boxes cover each cell of a shape x shape grid over the image."""
    corners = np.clip(np.round(xyxy(box) * shape).astype(np.int64), 0, shape)
    x0, y0, x1, y1 = corners.T
    side = shape + 1
    size = side * side
    diff = (
        np.bincount(y0 * side + x0, minlength=size)
        - np.bincount(y0 * side + x1, minlength=size)
        - np.bincount(y1 * side + x0, minlength=size)
        + np.bincount(y1 * side + x1, minlength=size)
    ).reshape(side, side)
    return diff.cumsum(axis=0).cumsum(axis=1)[:shape, :shape]


def _heatmap_panel(ax: Any, table: LabelTable, m: np.ndarray, size: int, aspect: float) -> dict[str, Any]:
    """One class's boxes (mask `m`) drawn as a map of `aspect` (height / width); its stats by name."""
    ax.set_box_aspect(aspect)
    ax.set_xticks([])
    ax.set_yticks([])
    if not m.any():
        plots.empty(ax, "no box")
        return {}
    ax.imshow(coverage(table.box[m], size), cmap="inferno", extent=(0, 1, 1, 0), aspect="auto")
    centre = table.box[m, :2].mean(axis=0)
    name = table.class_names[int(table.cls[m][0])]
    return {name: {"boxes": int(m.sum()), "mean_centre": [number(v) for v in centre]}}


def detection_class_heatmap(ctx: Context, params: Mapping[str, Any]) -> FeatureResult | None:
    table = _boxes(ctx)
    if table is None:
        return None
    shape = params.get("heatmap_shape", 100)
    size = int(shape[0] if isinstance(shape, (list, tuple)) else shape)
    n_classes = min(
        int(params.get("n_rows", 6)) * int(params.get("n_cols", 1)), 12
    )  # DataGradients: a rows x cols grid
    present = [s for s in ctx.splits if (table.split == s).any()]
    counts = class_counts(table, ctx.splits)
    shown = top_classes(counts, n_classes)
    fig, axes = plots.figure(1.1 + 1.45 * len(shown), ncols=len(present), nrows=len(shown))
    stats: dict[str, Any] = {s: {} for s in present}
    for k, split in enumerate(present):
        aspect = ctx.images.aspect(table.image[table.split == split]) or 1.0
        for r, c in enumerate(shown):
            m = (table.split == split) & (table.cls == c)
            stats[split].update(_heatmap_panel(axes[r * len(present) + k], table, m, size, aspect))
            axes[r * len(present) + k].set_title(
                f"{table.class_names[c]} - {split}", fontsize=8, color=ctx.colours[split]
            )
    title = shown_title(table, counts, shown)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    hidden = len(top_classes(counts, len(table.class_names))) - len(shown)
    description = (
        "Where the boxes of each class lie in the image: every box adds one to each cell it covers "
        "(image coordinates, top left is the origin; brighter is more). Each map has the median "
        "aspect ratio of its split's images."
    )
    if hidden > 0:
        description += f" The {len(shown)} most frequent classes are shown; {hidden} more are not."
    return FeatureResult(
        name="DetectionClassHeatmap",
        title="Bounding Boxes Density",
        description=description,
        stats=stats,
        figure=fig,
    )
