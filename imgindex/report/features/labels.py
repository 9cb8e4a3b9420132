"""Label Features: the dataset's classes and how much each split uses them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..db import LabelTable
from .base import Context, FeatureResult

NAMES_IN_NOTICE = 10
FOLD_ROWS = 24  # a longer table of at most 3 columns is laid out in two halves side by side


def class_use(table: LabelTable, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Per class (index into class_names): the split's annotations of it, and the images holding them."""
    n = len(table.class_names)
    mine = table.split == split
    annotations = np.bincount(table.cls[mine], minlength=n)
    pairs = np.unique(np.stack([table.image[mine], table.cls[mine]], axis=1), axis=0)
    images = np.bincount(pairs[:, 1], minlength=n) if len(pairs) else np.zeros(n, dtype=np.int64)
    return annotations, images


def class_label(table: LabelTable, index: int) -> str:
    """A class as the report lists it: its name, and its id when the name is not the id."""
    name, class_id = table.class_names[index], table.class_ids[index]
    return name if class_id is None or name == str(class_id) else f"{name} ({class_id})"


def dataset_classes(ctx: Context, params: Mapping[str, Any]) -> FeatureResult | None:
    table = ctx.labels
    if table is None or not table.class_names:
        return None
    splits = [s for s in ctx.splits if (table.split == s).any()] or ctx.splits
    use = {split: class_use(table, split) for split in splits}
    stats = {split: _split_classes(table, *use[split]) for split in splits}
    rows = [["Class (id)"] + [f"{split}: annotations / images" for split in splits]]
    for c in range(len(table.class_names)):
        rows.append([class_label(table, c)] + [_use_cell(use[s][0][c], use[s][1][c]) for s in splits])
    rows, widths = side_by_side(rows)
    return FeatureResult(
        name="DatasetClasses",
        title="Classes",
        description=f"The {len(table.class_names)} classes of the dataset: those its names file (data.yaml, "
        "classes.txt), COCO categories or class folders name, and any other class id its labels use. "
        "Beside each: how many annotations of each split have the class, and in how many images.",
        stats=stats,
        notices=_unused_notice(table, use),
        table=rows,
        table_widths=widths,
    )


def side_by_side(rows: list[list[str]]) -> tuple[list[list[str]], list[float] | None]:
    """A long table of few columns as its two halves side by side (the first half on the left),
    with its column widths; other tables as they are."""
    header, body = rows[0], rows[1:]
    n = len(header)
    if n > 3 or len(body) <= FOLD_ROWS:
        return rows, None
    half = (len(body) + 1) // 2
    right = body[half:] + [[""] * n] * (2 * half - len(body))
    first = 0.25 if n == 2 else 0.2
    widths = [first] + [(0.5 - first) / (n - 1)] * (n - 1)
    return [header + header] + [a + b for a, b in zip(body[:half], right)], widths + widths


def _split_classes(table: LabelTable, annotations: np.ndarray, images: np.ndarray) -> dict[str, Any]:
    return {
        name: {"id": table.class_ids[c], "annotations": int(annotations[c]), "images": int(images[c])}
        for c, name in enumerate(table.class_names)
    }


def _use_cell(annotations: int, images: int) -> str:
    return f"{annotations} / {images}" if annotations else "not in use"


def _unused_notice(table: LabelTable, use: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[str]:
    total = np.sum([annotations for annotations, _ in use.values()], axis=0)
    unused = [table.class_names[c] for c in np.flatnonzero(total == 0)]
    if not unused:
        return []
    more = len(unused) - NAMES_IN_NOTICE
    listed = ", ".join(unused[:NAMES_IN_NOTICE]) + (f" and {more} more" if more > 0 else "")
    return [f"{len(unused)} of the {len(table.class_names)} classes are in no label: {listed}."]
