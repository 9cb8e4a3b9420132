"""ImageDuplicates, with DataGradients' stats keys and sentences, from the index's stored verdict
(imgindex.near.verdict): the same groups, scenes and label conflicts `imgindex duplicates` prints."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ...near.groups import rule_of, verdict_document
from ...near.verdict import DEFAULT_MAX_DISTANCE, verdict_for
from .. import plots
from ..db import VALIDATION_NAMES
from ..stats import percent
from .base import Context, FeatureResult

Groups = list[list[str]]


def find_groups(ctx: Context, params: Mapping[str, Any]) -> dict[str, Any]:
    """What `imgindex duplicates --json` prints for the same rule (the stored verdict by default;
    params may name another: rule, max_distance)."""
    rule = rule_of(str(params.get("rule", "imgindex")), int(params.get("max_distance", DEFAULT_MAX_DISTANCE)))
    return verdict_document(verdict_for(ctx.db, rule))


def roles(splits: list[str], params: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(train split, validation split) in DataGradients' sense."""
    train = params.get("train_split") or next((s for s in splits if s.lower() == "train"), None)
    valid = params.get("valid_split") or next((s for s in splits if s.lower() in VALIDATION_NAMES), None)
    return train, valid


def split_key(split: str, train: str | None, valid: str | None) -> str:
    if split == train:
        return "Train duplicates"
    if split == valid:
        return "Validation duplicates"
    return f"{split[:1].upper()}{split[1:]} duplicates"


def pair_key(a: str, b: str, train: str | None, valid: str | None) -> str:
    if {a, b} == {train, valid}:
        return "Intersection duplicates"
    return f"Intersection duplicates ({a}, {b})"


def _display(split: str, train: str | None, valid: str | None) -> str:
    return "train" if split == train else "validation" if split == valid else split


def split_sentence(groups: Groups) -> str:
    if not groups:
        return "There are 0 duplicated images."
    members = sum(len(g) for g in groups)
    return f"There are {len(groups)} duplicated images appearing {members} times across the dataset."


def pair_sentence(a_name: str, b_name: str, k: int, in_a: int, in_b: int) -> str:
    if not k:
        return f"There are 0 duplicates between {a_name} and {b_name}."
    return (
        f"There are {k} duplicates between {a_name} and {b_name} appearing {in_a} times in the {a_name} image "
        f"directory, and {in_b} times in the {b_name} image directory."
    )


def _ordered_pair(a: str, b: str, train: str | None, order: list[str]) -> tuple[str, str]:
    if b == train or (a != train and order.index(b) < order.index(a)):
        return b, a
    return a, b


def image_duplicates(ctx: Context, params: Mapping[str, Any]) -> FeatureResult | None:
    found = find_groups(ctx, params)
    train, valid = roles(ctx.splits, params)
    chosen = [s for s in ctx.splits if s in (train, valid)] if params.get("train_split") else ctx.splits
    chosen = [s for s in chosen if found["splits"].get(s, {}).get("images")]
    if not chosen:
        return None
    stats: dict[str, Any] = {}
    lines: list[str] = [f"<b>Rule</b>: {found['rule']['description']}."]
    for split in chosen:
        groups = found["splits"][split]["groups"]
        stats[split_key(split, train, valid)] = groups
        lines.append(f"<b>{_display(split, train, valid).capitalize()} duplicated images</b>: {split_sentence(groups)}")
    if train in chosen and valid in chosen:
        stats["Intersection duplicates"] = []
    pair_counts = _pairs(ctx, found, chosen, train, valid, stats, lines)
    lines += _scene_lines(found, chosen) + [_conflict_line(found)]
    stats["Rule"] = found["rule"]
    stats["Scene overlap"] = _scene_stats(found, chosen)
    stats["Label conflicts"] = found["label_conflicts"]
    return FeatureResult(
        name="ImageDuplicates",
        title="Image Duplicates",
        description="\n".join(lines),
        stats=stats,
        notices=_notices(ctx, found, chosen, pair_counts, train, valid),
        figure=_figure(ctx, found, chosen, pair_counts),
    )


def _pairs(
    ctx: Context,
    found: dict[str, Any],
    chosen: list[str],
    train: str | None,
    valid: str | None,
    stats: dict[str, Any],
    lines: list[str],
) -> dict[tuple[str, str], tuple[int, int, int]]:
    counts: dict[tuple[str, str], tuple[int, int, int]] = {}
    for item in found["intersections"]:
        a, b = item["splits"]
        if a not in chosen or b not in chosen:
            continue
        in_a, in_b = (sum(m[i] for m in item.get("members", [])) for i in (0, 1))
        if (b, a) == _ordered_pair(a, b, train, ctx.splits):
            a, b, in_a, in_b = b, a, in_b, in_a
        stats[pair_key(a, b, train, valid)] = item["groups"]
        counts[(a, b)] = (len(item["groups"]), in_a, in_b)
    if train in chosen and valid in chosen:
        counts = {(train, valid): counts.get((train, valid), (0, 0, 0)), **counts}
    for (a, b), (k, in_a, in_b) in counts.items():
        lines.append(pair_sentence(_display(a, train, valid), _display(b, train, valid), k, in_a, in_b))
    return counts


def _scene_stats(found: dict[str, Any], chosen: list[str]) -> list[dict[str, Any]]:
    return [
        {"splits": item["splits"], "scenes": item["scenes"], "members": item["scene_members"]}
        for item in found["intersections"]
        if item["scenes"] and set(item["splits"]) <= set(chosen)
    ]


def _scene_lines(found: dict[str, Any], chosen: list[str]) -> list[str]:
    """Scenes shared by two splits, worded so that they are never called copies."""
    lines = []
    for item in _scene_stats(found, chosen):
        a, b = item["splits"]
        images = sum(x + y for x, y in item["members"])
        lines.append(
            f"{a} and {b} share {len(item['scenes'])} scene(s), {images} images: different photos of one scene, "
            "not copies (they are not counted as duplicates)."
        )
    return lines


def _conflict_line(found: dict[str, Any]) -> str:
    conflicts = found["label_conflicts"]
    if not conflicts:
        return "No duplicate pair is labelled two ways."
    return f"<b>Label conflicts</b>: {len(conflicts)} duplicate pair(s) are labelled two ways."


def _notices(
    ctx: Context,
    found: dict[str, Any],
    chosen: list[str],
    pairs: dict[tuple[str, str], tuple[int, int, int]],
    train: str | None,
    valid: str | None,
) -> list[str]:
    notices = []
    for (a, b), (k, _, in_b) in pairs.items():
        n_b = found["splits"][b]["images"]
        if k:
            notices.append(
                f"{in_b} of {n_b} {_display(b, train, valid)} images ({percent(in_b, n_b)}) also appear in "
                f"{_display(a, train, valid)}: evaluation on {_display(b, train, valid)} overstates accuracy."
            )
    for split in chosen:
        groups = found["splits"][split]["groups"]
        extra = sum(len(g) - 1 for g in groups)
        if extra:
            n = found["splits"][split]["images"]
            notices.append(
                f"{extra} image(s) of {split} ({percent(extra, n)}) are redundant copies of another image of {split}."
            )
    for item in _scene_stats(found, chosen):
        a, b = item["splits"]
        notices.append(
            f"{a} and {b} share {len(item['scenes'])} scene(s): different photos of one scene in both splits; "
            "a model evaluated on them has seen the scene, if not the photo."
        )
    if found["label_conflicts"]:
        notices.append(
            f"{len(found['label_conflicts'])} duplicate pair(s) are labelled two ways: the same picture teaches "
            "two answers (see label_conflict_pairs in the index)."
        )
    return notices


def _figure(
    ctx: Context, found: dict[str, Any], chosen: list[str], pairs: dict[tuple[str, str], tuple[int, int, int]]
) -> Any:
    fig, (left, right) = plots.figure(2.6, ncols=2)
    shares = [
        100 * sum(len(g) for g in found["splits"][s]["groups"]) / max(found["splits"][s]["images"], 1) for s in chosen
    ]
    left.bar(chosen, shares, color=[ctx.colours[s] for s in chosen])
    left.set_ylim(bottom=0, top=max(shares + [1]) * 1.15)
    plots.style(left, "Images in a duplicate group", ylabel="% of the split")
    if pairs:
        labels = [f"{a} / {b}" for a, b in pairs]
        y = np.arange(len(pairs))
        right.barh(y - 0.2, [c[1] for c in pairs.values()], height=0.4, color=[ctx.colours[a] for a, _ in pairs])
        right.barh(y + 0.2, [c[2] for c in pairs.values()], height=0.4, color=[ctx.colours[b] for _, b in pairs])
        right.set_yticks(y)
        right.set_yticklabels(labels, fontsize=8)
        right.invert_yaxis()
        right.set_xlim(left=0, right=max([c[1] for c in pairs.values()] + [c[2] for c in pairs.values()] + [1]) * 1.1)
        plots.style(right, "Images shared between splits", "images (bar colour = their split)")
    else:
        plots.empty(right, "only one split")
        plots.style(right, "Images shared between splits")
    fig.tight_layout()
    return fig
