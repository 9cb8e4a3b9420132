"""Image Quality: the stored quality flags (imgindex.quality) per split, the measures they judge
with the thresholds drawn, and thumbnails of flagged images. Every feature states the rule the
stored flags applied, in the sentences `imgindex quality` prints."""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
from matplotlib.ticker import MaxNLocator
from PIL import Image, ImageOps

from ...quality.flags import (
    BY_NAME,
    FARTHER,
    FLAGS,
    HIGHER,
    LOWER,
    ODD_SIZE_MIN_SPLIT,
    OUTLIER_MIN_SPLIT,
    Flag,
    Measures,
    odd_size_limits,
)
from ...serve import files, thumbnails
from .. import plots
from ..db import FlaggedImage
from ..stats import describe, histogram, number, percent
from .base import Context, FeatureResult, Gallery, Thumbnail

EXAMPLES = 6  # thumbnails per flag (parameter `examples`)
THUMBNAIL_SIDE = 160  # pixels of a thumbnail's longer side
BINS = 30

# The x axis of a flag's panel, by the measure the flag judges (Flag.measure); another measure
# is shown by its name.
AXIS = {
    "brightness_p95": "95th percentile of brightness (share of white)",
    "brightness_p5": "5th percentile of brightness (share of white)",
    "light_share": "share of the pixels near white",
    "sharpness": "sharpness",
    "entropy": "entropy of the grey levels (bits)",
    "detail": "detail (RMS difference of neighbouring grey levels)",
    "aspect_ratio": "shorter side / longer side",
    "size_to_median": "side / the split's median side",
    "chroma": "chroma (mean channel spread, 0-255)",
    "outlier_score": "outlier score (robust z-score against the split)",
}
# How far a value is from the ordinary, by Flag.worse, larger first: the examples shown are the most extreme.
_EXTREME: dict[str, Callable[[float], float]] = {
    LOWER: lambda v: -v,
    HIGHER: lambda v: v,
    FARTHER: lambda v: abs(math.log(v)) if v > 0 else math.inf,
}


def rule_json(ctx: Context) -> dict[str, Any]:
    """The rule the stored flags applied, as `imgindex quality --json` gives it."""
    quality = ctx.quality
    return {"thresholds": quality.thresholds, "flags": quality.rule}


def rule_markup(ctx: Context) -> str:
    return "<b>Rule applied</b> (imgindex quality):\n" + "\n".join(escape(line) for line in ctx.quality.rule)


def _sentence(ctx: Context, name: str) -> str:
    return next((line for line in ctx.quality.rule if line.startswith(f"{name}: ")), name)


def _judged_splits(ctx: Context) -> list[str]:
    return [s for s in ctx.splits if s in ctx.quality.images]


# --- counts per split and flag -------------------------------------------------------------


def quality_flags(ctx: Context, params: Mapping[str, Any]) -> FeatureResult | None:
    quality = ctx.quality
    splits = _judged_splits(ctx)
    if not splits:
        return None
    names = [flag.name for flag in FLAGS]
    any_flag = {s: 0 for s in splits}
    for entry in quality.flagged:
        if entry["split"] in any_flag:
            any_flag[entry["split"]] += 1
    stats = {
        "rule": rule_json(ctx),
        "splits": {
            s: {"images": quality.images[s], "flagged": any_flag[s], "flags": dict(quality.counts.get(s, {}))}
            for s in splits
        },
    }
    table = [["Flag"] + [f"{s} ({quality.images[s]} images)" for s in splits]]
    for name in names:
        table.append([name] + [_count_cell(quality.counts[s].get(name, 0), quality.images[s]) for s in splits])
    table.append(["any flag"] + [_count_cell(any_flag[s], quality.images[s]) for s in splits])
    return FeatureResult(
        name="ImageQualityFlags",
        title="Quality Flags",
        description="Images of each split carrying each quality flag, judged from the measures every scan "
        "stores, with the thresholds stored in the index (<i>imgindex quality --threshold</i> changes them). "
        "An image may carry several flags.\n" + rule_markup(ctx),
        stats=stats,
        notices=_flag_notices(ctx, splits, any_flag),
        figure=_flags_figure(ctx, splits, names),
        table=table,
        table_widths=_widths(len(splits)),
    )


def _count_cell(n: int, of: int) -> str:
    return f"{n} ({percent(n, of)})" if n else "0"


def _widths(n_splits: int) -> list[float] | None:
    """The table's widths: the report's default (30 % for the flag) up to two splits, then narrower."""
    return None if n_splits <= 2 else [0.2] + [0.8 / n_splits] * n_splits


def _flags_figure(ctx: Context, splits: list[str], names: list[str]) -> Any:
    quality = ctx.quality
    fig, axes = plots.figure(0.9 + 0.32 * len(names))
    ax = axes[0]
    shares: dict[str, Sequence[float]] = {
        s: [100 * quality.counts[s].get(n, 0) / max(quality.images[s], 1) for n in names] for s in splits
    }
    plots.grouped_barh(ax, names, shares, ctx.colours)
    plots.style(ax, "", "images carrying the flag (% of the split)")
    ax.set_xlim(0, max([v for vals in shares.values() for v in vals] + [1]) * 1.12)
    ax.tick_params(axis="y", labelsize=8)
    plots.legend(fig, ctx.colours, splits)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig


def _flag_notices(ctx: Context, splits: list[str], any_flag: dict[str, int]) -> list[str]:
    quality = ctx.quality
    notices = [
        f"{any_flag[s]} of {quality.images[s]} images of {s} ({percent(any_flag[s], quality.images[s])}) "
        "carry at least one quality flag."
        for s in splits
        if any_flag[s]
    ]
    for split in ctx.splits:
        unmeasured = ctx.image_count(split) - quality.images.get(split, 0)
        if unmeasured > 0:
            notices.append(
                f"{unmeasured} readable image(s) of {split} have no quality measures (indexed by an older "
                "version): scan again to judge them."
            )
    for split in splits:
        n = quality.images[split]
        if n < OUTLIER_MIN_SPLIT:
            notices.append(
                f"{split} has {n} image(s): outlier scores need {OUTLIER_MIN_SPLIT}"
                + (f" and odd sizes {ODD_SIZE_MIN_SPLIT}" if n < ODD_SIZE_MIN_SPLIT else "")
                + ", so those flags are not judged in it."
            )
    return notices


# --- distributions with the thresholds ------------------------------------------------------


def quality_distributions(ctx: Context, params: Mapping[str, Any]) -> FeatureResult | None:
    measures = {s: m for s, m in ctx.quality_measures.items() if s in ctx.splits}
    if not measures:
        return None
    thresholds = ctx.quality.thresholds
    rows = (len(FLAGS) + 1) // 2
    fig, axes = plots.figure(2.15 * rows, ncols=2, nrows=rows)
    stats: dict[str, Any] = {"rule": rule_json(ctx), "flags": {}}
    for ax, flag in zip(axes, FLAGS):
        stats["flags"][flag.name] = _panel(ctx, ax, flag, measures, thresholds)
    for ax in axes[len(FLAGS) :]:
        ax.set_visible(False)
    fig.tight_layout(h_pad=0.8, w_pad=1.2)
    return FeatureResult(
        name="ImageQualityThresholds",
        title="Quality Measures and Thresholds",
        description="For each flag, the distribution of the value it judges, one curve per split (the share of "
        "the split's images in each bin), with the threshold applied drawn as a dashed line; the title of each "
        "panel is the rule. odd_size is judged against each split's own sizes: its limits are drawn per split, "
        "in the split's colour. The legend counts the images of each split carrying the flag. The thresholds are "
        "those the stored flags applied (Quality Flags above).",
        stats=stats,
        figure=fig,
    )


def _panel(
    ctx: Context, ax: Any, flag: Flag, measures: Mapping[str, Measures], thresholds: Mapping[str, float]
) -> dict[str, Any]:
    threshold = float(thresholds[flag.name])
    judged = {s: flag.judge(m, thresholds) for s, m in measures.items()}
    values = {s: v[np.isfinite(v)] for s, (_, v) in judged.items()}
    limits = {s: _odd_size_limits(measures[s], threshold) for s in measures} if flag.name == "odd_size" else {}
    lines = [lim for pair in limits.values() if pair for lim in pair] if limits else [threshold]
    edges = _edges(np.concatenate(list(values.values())), lines)
    out: dict[str, Any] = {"measure": flag.measure, "threshold": threshold, "rule": _sentence(ctx, flag.name)}
    out["splits"] = {}
    for split, (mask, _) in judged.items():
        v = values[split]
        flagged = int(np.count_nonzero(mask))
        entry: dict[str, Any] = {**describe(v), "flagged": flagged}
        if edges is not None:
            entry["histogram"] = histogram(v, edges)
        if split in limits:
            pair = limits[split]
            entry["limits"] = [number(x) for x in pair] if pair else None
        out["splits"][split] = entry
        if v.size and edges is not None:
            ax.hist(
                np.clip(v, edges[0], edges[-1]),
                bins=edges,
                weights=np.full(v.size, 100.0 / v.size),
                histtype="step",
                linewidth=1.5,
                color=ctx.colours[split],
                label=f"{split}: {flagged} flagged",
            )
    title = "\n".join(textwrap.wrap(_sentence(ctx, flag.name), 62))
    plots.style(ax, "", AXIS.get(flag.measure, flag.measure), "% of the split")
    ax.set_title(title, fontsize=8)
    if edges is None:
        plots.empty(ax, _no_values(flag))
        return out
    if limits:
        for n, (split, pair) in enumerate(limits.items()):
            for k, x in enumerate(pair or ()):
                label = f"{flag.name} limits, per split" if n == 0 and k == 0 else None
                ax.axvline(x, color=ctx.colours[split], linestyle="--", linewidth=1.1, label=label, ymax=LIMITS_TOP)
        if not lines:
            ax.text(
                0.02,
                0.97,
                f"not judged: splits of fewer than {ODD_SIZE_MIN_SPLIT} images",
                transform=ax.transAxes,
                fontsize=7,
                va="top",
                color="#555555",
            )
    else:
        label = f"{flag.name} threshold: {threshold:g}"  # the title says on which side
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1.1, label=label)
        _line_label(ax, edges, threshold, f"{threshold:g}")
    ax.set_xlim(edges[0], edges[-1])
    entries = len(ax.get_legend_handles_labels()[1])
    top = ax.get_ylim()[1]
    ax.set_ylim(0, top * (1.2 + 0.14 * entries))  # room above the curves for the legend
    ax.set_yticks([t for t in ax.get_yticks() if 0 <= t <= min(top, 100)])  # no share above 100 %
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6))
    _place_legend(ax, [] if limits else lines)  # odd_size's limits stop below the legend
    return out


def _no_values(flag: Flag) -> str:
    if flag.name == "outlier":
        return f"no outlier scores: every split has fewer than {OUTLIER_MIN_SPLIT} images"
    return "no values"


def _edges(values: np.ndarray, lines: list[float]) -> np.ndarray | None:
    """Bins spanning every value and every line, with a margin."""
    if values.size == 0:
        return None
    low, high = float(min([values.min(), *lines])), float(max([values.max(), *lines]))
    margin = max((high - low) * 0.04, 1e-3)
    return np.linspace(low - margin, high + margin, BINS + 1)


LIMITS_TOP = 0.72  # odd_size's limits are drawn up to this height of the panel, under the legend
LEGEND_PLACES = ("upper right", "upper left", "center right", "center left", "upper center")


def _place_legend(ax: Any, lines: list[float]) -> None:
    """The legend in the first corner that no threshold line crosses (the upper ones first: the
    panel has room above the curves)."""
    renderer = ax.figure.canvas.get_renderer()
    to_axes = ax.transAxes.inverted()
    xs = [to_axes.transform(ax.transData.transform((x, 0)))[0] for x in lines]
    for place in LEGEND_PLACES:
        legend = ax.legend(fontsize=6.5, frameon=False, loc=place)
        (x0, _), (x1, _) = to_axes.transform(legend.get_window_extent(renderer).get_points())
        if not any(x0 - 0.02 <= x <= x1 + 0.02 for x in xs):
            return
    ax.legend(fontsize=6.5, frameon=False, loc="upper right")


def _line_label(ax: Any, edges: np.ndarray, x: float, text: str) -> None:
    """The threshold's value at the top of its line, on the side of the panel's centre."""
    right = x < (edges[0] + edges[-1]) / 2
    ax.annotate(
        text,
        xy=(x, 1.0),
        xycoords=("data", "axes fraction"),
        xytext=(3 if right else -3, -3),
        textcoords="offset points",
        ha="left" if right else "right",
        va="top",
        fontsize=7,
    )


def _odd_size_limits(m: Measures, threshold: float) -> tuple[float, float] | None:
    """odd_size's limits in the panel's unit (side over the split's median side); None where the
    split is too small to be judged."""
    limits = odd_size_limits(m.side, threshold)
    if limits is None:
        return None
    low, high, median = limits
    return low / median, high / median


# --- example thumbnails ---------------------------------------------------------------------


def quality_examples(ctx: Context, params: Mapping[str, Any]) -> FeatureResult | None:
    flagged = ctx.quality_flagged
    if not flagged:
        return None
    per_flag = max(int(params.get("examples", EXAMPLES)), 1)
    order = [flag.name for flag in FLAGS] + sorted(set(flagged) - {flag.name for flag in FLAGS})
    stats: dict[str, Any] = {"rule": rule_json(ctx), "flags": {}}
    galleries: list[Gallery] = []
    missing: dict[str, int] = {}
    for name in order:
        images = [i for i in flagged.get(name, []) if i.split in ctx.splits]
        if not images:
            continue
        shown = sorted(images, key=_extremeness(name))[:per_flag]
        pictures = [_thumbnail(image, ctx.roots.get(image.split, [])) for image in shown]
        for _, reason in pictures:
            if reason:
                missing[reason] = missing.get(reason, 0) + 1
        stats["flags"][name] = {
            "images": len(images),
            "shown": [
                {"split": i.split, "path": i.path, "value": i.value, "thumbnail": reason or "shown"}
                for i, (_, reason) in zip(shown, pictures)
            ],
        }
        more = f"; the {len(shown)} most marked shown" if len(shown) < len(images) else ""
        galleries.append(
            Gallery(
                heading=f"<b>{escape(name)}</b>: {len(images)} image{'s' if len(images) != 1 else ''}{more}. "
                f"Rule: {escape(_sentence(ctx, name))}.",
                thumbnails=[Thumbnail(jpeg, _caption(i, reason)) for i, (jpeg, reason) in zip(shown, pictures)],
            )
        )
    if not galleries:
        return None
    notices = [f"{n} thumbnail(s) could not be made: {reason}; a placeholder says so." for reason, n in missing.items()]
    return FeatureResult(
        name="ImageQualityExamples",
        title="Flagged Images",
        description=f"Up to {per_flag} images of each flag, those with the most marked value first, each with "
        "its file name (relative to its split's folder), its split and the value the flag judged. The "
        "thumbnails are made from the files the index names, when they are still the files that were "
        "indexed.",
        stats=stats,
        notices=notices,
        galleries=galleries,
    )


def _extremeness(name: str) -> Callable[[FlaggedImage], tuple[int, float]]:
    flag = BY_NAME.get(name)
    away = _EXTREME[flag.worse if flag else LOWER]

    def key(image: FlaggedImage) -> tuple[int, float]:
        if image.value is None or not math.isfinite(image.value):
            return (1, 0.0)
        return (0, -away(image.value))

    return key


def _caption(image: FlaggedImage, reason: str | None) -> str:
    name = image.rel_path if len(image.rel_path) <= 48 else "..." + image.rel_path[-45:]
    value = "-" if image.value is None else f"{image.value:g}"
    return f"{name}\n{image.split}: {value}" + (f"\n({reason})" if reason else "")


def _thumbnail(image: FlaggedImage, roots: list[str]) -> tuple[bytes, str | None]:
    """The image's thumbnail, or a placeholder and why there is none (the file is gone, changed
    since the scan, outside its split's folders, or cannot be decoded)."""
    opened = files.open_checked(image.row(), roots)
    if isinstance(opened, files.Refusal):
        reason = _reason(opened.message, image.id)
    else:
        with opened.file:
            try:
                return _framed(thumbnails.make_thumbnail(opened.file, THUMBNAIL_SIDE)), None
            except thumbnails.TooLarge:
                reason = "file too large for a thumbnail"
            except Exception:  # noqa: BLE001 -- any decoding failure gets a placeholder
                reason = "file cannot be decoded now"
    return thumbnails.placeholder(THUMBNAIL_SIDE, textwrap.fill(reason, 20)), reason


def _framed(jpeg: bytes) -> bytes:
    """The thumbnail with a thin grey frame: a white or black picture stays visible on the page."""
    with Image.open(io.BytesIO(jpeg)) as picture:
        framed = ImageOps.expand(picture.convert("RGB"), border=1, fill=(170, 170, 170))
    out = io.BytesIO()
    framed.save(out, "JPEG", quality=85)
    return out.getvalue()


def _reason(message: str, image_id: int) -> str:
    """A refusal's message about the file, without the image's id and the advice: 'file is no
    longer on disk'."""
    return "file " + message.removeprefix(f"Image {image_id} ").split(":")[0]
