"""Image Features: SummaryStats, ImagesResolution, ImageColorDistribution, ImagesAverageBrightness."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import plots
from ..stats import describe, histogram, number, percent, share
from .base import Context, FeatureResult

DARK, BRIGHT = 25.0, 230.0


def _megabytes(n_bytes: float) -> float:
    return round(n_bytes / 1e6, 2)


def _label_summary(ctx: Context, split: str) -> dict[str, Any]:
    labels = ctx.labels
    problems = sum(ctx.problems.get(split, {}).values())
    if labels is None or len(labels) == 0:
        return {"Label problems": problems} if problems else {}
    mine = labels.split == split
    images = ctx.image_count(split)
    labelled = len(np.unique(labels.image[mine]))
    return {
        "Classes": len(labels.class_names),
        "Classes in use": len(np.unique(labels.cls[mine])),
        "Annotations": int(mine.sum()),
        "Annotations per image": number(share(int(mine.sum()), images), 2),
        "Images without annotations": max(images - labelled, 0),
        "Label problems": problems,
    }


def _split_summary(ctx: Context, split: str) -> dict[str, Any]:
    t = ctx.images
    m = t.mask(split)
    w, h = t.width[m], t.height[m]
    area = w * h
    files = ctx.files.get(split, {"bytes": 0, "formats": {}})
    out: dict[str, Any] = {
        "Images": t.counts.get(split, 0),
        "Unreadable images": t.errors.get(split, 0),
        "Total size (MB)": _megabytes(float(files["bytes"])),
        "Median image width": number(np.median(w)) if w.size else None,
        "Median image height": number(np.median(h)) if h.size else None,
        "Smallest image": f"{int(w[area.argmin()])}x{int(h[area.argmin()])}" if w.size else None,
        "Largest image": f"{int(w[area.argmax()])}x{int(h[area.argmax()])}" if w.size else None,
        "Formats": files["formats"],
    }
    out.update(_label_summary(ctx, split))
    return out


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "-"
    return str(value)


def summary_stats(ctx: Context, params: Mapping[str, Any]) -> FeatureResult | None:
    if not ctx.splits:
        return None
    stats = {split: _split_summary(ctx, split) for split in ctx.splits}
    keys = list(dict.fromkeys(k for s in stats.values() for k in s))
    table = [[""] + ctx.splits] + [[k] + [_cell(stats[s].get(k)) for s in ctx.splits] for k in keys]
    notices = [
        f"{stats[s]['Unreadable images']} image(s) of {s} could not be read; they are left out of all statistics."
        for s in ctx.splits
        if stats[s]["Unreadable images"]
    ]
    notices += [f"Split {s} holds no images." for s in ctx.splits if not stats[s]["Images"]]
    return FeatureResult(
        name="SummaryStats",
        title="General Statistics",
        description="Counts per split: images, unreadable files, size on disk, the median image "
        "resolution and, when labels are indexed, classes, annotations and label problems.",
        stats=stats,
        notices=notices,
        figure=_summary_figure(ctx, stats),
        table=table,
    )


def _summary_figure(ctx: Context, stats: dict[str, dict[str, Any]]) -> Any:
    has_labels = any("Annotations" in s for s in stats.values())
    fig, axes = plots.figure(2.2, ncols=2 if has_labels else 1)
    colours = [ctx.colours[s] for s in ctx.splits]
    axes[0].bar(ctx.splits, [stats[s]["Images"] for s in ctx.splits], color=colours)
    plots.style(axes[0], "Images per split", ylabel="images")
    if has_labels:
        axes[1].bar(ctx.splits, [stats[s].get("Annotations", 0) for s in ctx.splits], color=colours)
        plots.style(axes[1], "Annotations per split", ylabel="annotations")
    fig.tight_layout()
    return fig


def images_resolution(ctx: Context, params: Mapping[str, Any]) -> FeatureResult | None:
    t = ctx.images
    if t.width.size == 0:
        return None
    stats: dict[str, Any] = {}
    fig, axes = plots.figure(3.0, ncols=len(ctx.splits), sharex=True, sharey=True)
    for ax, split in zip(axes, ctx.splits):
        m = t.mask(split)
        pairs, counts = (
            np.unique(np.stack([t.width[m], t.height[m]], axis=1), axis=0, return_counts=True)
            if m.any()
            else (np.empty((0, 2)), np.empty(0))
        )
        top = np.argsort(-counts, kind="stable")[:5]
        stats[split] = {
            "width": describe(t.width[m], 2),
            "height": describe(t.height[m], 2),
            "distinct_resolutions": len(pairs),
            "most_common": [
                {"width": int(pairs[i, 0]), "height": int(pairs[i, 1]), "images": int(counts[i])} for i in top
            ],
        }
        if m.any():
            sizes = 12 + 60 * np.log1p(counts) / np.log1p(counts.max())
            ax.scatter(pairs[:, 0], pairs[:, 1], s=sizes, color=ctx.colours[split], alpha=0.6, linewidths=0)
        else:
            plots.empty(ax)
        plots.style(ax, f"{split} ({int(m.sum())} images)", "width (px)", "height (px)" if ax is axes[0] else "")
    axes[0].set_xlim(0, max(float(t.width.max()), 1) * 1.08)
    axes[0].set_ylim(0, max(float(t.height.max()), 1) * 1.08)
    fig.tight_layout()
    return FeatureResult(
        name="ImagesResolution",
        title="Image Width and Height Distribution",
        description="Width and height of every readable image as stored. Each point is one resolution; "
        "its size grows with the number of images that have it. The median is the true median of the "
        "widths and of the heights.",
        stats=stats,
        notices=_resolution_notices(ctx, stats),
        figure=fig,
    )


def _resolution_notices(ctx: Context, stats: dict[str, Any]) -> list[str]:
    notices = []
    t = ctx.images
    small = (np.minimum(t.width, t.height) < 64).sum()
    if small:
        notices.append(f"{int(small)} image(s) are smaller than 64 pixels on a side.")
    medians = {s: (v["width"]["median"], v["height"]["median"]) for s, v in stats.items() if v["width"]["count"]}
    if len(medians) > 1:
        (a, (wa, ha)), *rest = medians.items()
        for b, (wb, hb) in rest:
            if max(wa, wb) > 1.5 * min(wa, wb) or max(ha, hb) > 1.5 * min(ha, hb):
                notices.append(
                    f"The median resolution of {b} ({wb:g}x{hb:g}) differs strongly from {a} ({wa:g}x{ha:g})."
                )
    return notices


def image_color_distribution(ctx: Context, params: Mapping[str, Any]) -> FeatureResult | None:
    hists = ctx.histograms
    if not hists:
        return None
    t = ctx.images
    fig, axes = plots.figure(2.6, ncols=3, sharey=True)
    stats: dict[str, Any] = {}
    for split in ctx.splits:
        m = t.mask(split)
        means = np.nanmean(t.mean_rgb[m], axis=0) if m.any() and np.isfinite(t.mean_rgb[m]).any() else [None] * 3
        hist = hists.get(split)
        stats[split] = {
            "images": int(m.sum()),
            "mean": {c: number(v, 2) for c, v in zip("rgb", means)},
            "histogram": {c: [number(x) for x in hist[i]] for i, c in enumerate("rgb")} if hist is not None else {},
        }
        if hist is None:
            continue
        centres = (np.arange(hist.shape[1]) + 0.5) * 256 / hist.shape[1]
        for ax, row in zip(axes, hist):
            ax.plot(centres, 100 * row, color=ctx.colours[split], label=split, linewidth=1.5)
    for ax, name in zip(axes, ("Red", "Green", "Blue")):
        plots.style(ax, name, "intensity (0-255)", "share of pixels (%)" if ax is axes[0] else "")
        ax.set_xlim(0, 255)
    plots.legend(fig, ctx.colours, [s for s in ctx.splits if s in hists])
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    return FeatureResult(
        name="ImageColorDistribution",
        title="Color Distribution",
        description="Distribution of red, green and blue intensities, averaged over the images of each "
        "split (each image weighs the same). Similar curves mean the splits were taken under similar "
        "conditions.",
        stats=stats,
        notices=_colour_notices(stats),
        figure=fig,
    )


def _colour_notices(stats: dict[str, Any]) -> list[str]:
    means = {s: v["mean"] for s, v in stats.items() if v["mean"]["r"] is not None}
    if len(means) < 2:
        return []
    first, *rest = means
    notices = []
    for split in rest:
        for c, name in zip("rgb", ("red", "green", "blue")):
            diff = abs(means[split][c] - means[first][c])
            if diff > 15:
                notices.append(
                    f"The mean {name} intensity of {split} ({means[split][c]:.0f}) differs from {first} "
                    f"({means[first][c]:.0f}) by {diff:.0f} of 255."
                )
    return notices


def images_average_brightness(ctx: Context, params: Mapping[str, Any]) -> FeatureResult | None:
    t = ctx.images
    if not np.isfinite(t.brightness).any():
        return None
    edges = np.linspace(0, 256, 33)  # summary.json's histogram: the same bins in every report
    shown = brightness_edges(t.brightness)
    fig, axes = plots.figure(2.6)
    ax = axes[0]
    stats: dict[str, Any] = {}
    notices: list[str] = []
    for split in ctx.splits:
        values = t.brightness[t.mask(split)]
        values = values[np.isfinite(values)]
        stats[split] = {**describe(values, 2), "histogram": histogram(values, edges)}
        if values.size:
            ax.hist(
                values, bins=shown, density=True, histtype="step", linewidth=1.8, color=ctx.colours[split], label=split
            )
            dark, bright = int((values < DARK).sum()), int((values > BRIGHT).sum())
            if dark:
                notices.append(
                    f"{dark} image(s) of {split} ({percent(dark, values.size)}) are very dark (mean luma < {DARK:g})."
                )
            if bright:
                notices.append(
                    f"{bright} image(s) of {split} ({percent(bright, values.size)}) are very bright (mean luma > {BRIGHT:g})."
                )
    plots.style(ax, "", "mean luma of the image (0-255)", "density")
    ax.set_xlim(shown[0], shown[-1])
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return FeatureResult(
        name="ImagesAverageBrightness",
        title="Image Brightness Distribution",
        description="Distribution of image brightness: the mean luma (ITU-R 601) over all pixels of the "
        "whole image, per split. A shift between splits means that they differ in lighting.",
        stats=stats,
        notices=notices + _shift_notices(stats),
        figure=fig,
    )


def brightness_edges(values: np.ndarray, bins: int = 32) -> np.ndarray:
    """Bin edges of the brightness plot: from the darkest to the brightest image, a bin's width
    of margin on each side, within 0..255."""
    v = values[np.isfinite(values)]
    low, high = float(v.min()), float(v.max())
    width = max((high - low) / bins, 0.5)
    low, high = max(low - width, 0.0), min(high + width, 255.0)
    return np.linspace(low, high, bins + 1)


def _shift_notices(stats: dict[str, Any]) -> list[str]:
    medians = {s: v["median"] for s, v in stats.items() if v["median"] is not None}
    if len(medians) < 2:
        return []
    first, *rest = medians
    return [
        f"The median brightness of {s} ({medians[s]:.0f}) differs from {first} ({medians[first]:.0f})."
        for s in rest
        if abs(medians[s] - medians[first]) > 20
    ]
