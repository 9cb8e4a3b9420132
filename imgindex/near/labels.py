"""The labels of two pictures compared: evidence when grading a near pair, and label conflicts.

An image's labels are known when a label file of its split covers it (label_file_images: an empty
YOLO file, or a COCO image without annotations, is a background image with no labels); otherwise
nothing is said about them. Two label sets agree when they hold the same classes the same number of
times and every box finds a box of the same class overlapping it by IoU >= MIN_IOU (normalised
coordinates, so a resized copy keeps its boxes; a light crop moves them a little).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

import sqlite_utils

MIN_IOU = 0.5

Box = tuple[float, float, float, float]  # cx, cy, w, h normalised


@dataclass(frozen=True)
class ImageLabels:
    classes: Counter[int | None]
    boxes: dict[int | None, list[Box]]
    names: dict[int | None, str] = field(default_factory=dict, compare=False)  # class id -> name, when known


@dataclass(frozen=True)
class Disagreement:
    kind: str  # classes differ | boxes differ
    detail: str


# whether a label file of its split covers the image ``i`` (its labels are known, maybe none)
COVERED_SQL = (
    "EXISTS (SELECT 1 FROM label_file_images lfi JOIN label_files lf ON lf.id = lfi.label_file_id "
    "WHERE lfi.image_path = i.path AND lf.split = i.split)"
)


def load(db: sqlite_utils.Database, image_ids: Iterable[int]) -> dict[int, ImageLabels]:
    """The labels of every given image a label file covers (images not covered are left out)."""
    wanted = json.dumps(sorted(set(image_ids)))
    covered = db.execute(
        f"SELECT i.id FROM images i WHERE i.id IN (SELECT value FROM json_each(?)) AND {COVERED_SQL}", [wanted]
    ).fetchall()
    out = {r[0]: ImageLabels(Counter(), {}) for r in covered}
    rows = db.execute(
        """SELECT i.id, l.class_id, l.class_name, l.cx, l.cy, l.w, l.h FROM images i
           JOIN labels l ON l.split = i.split AND l.image_path = i.path
           WHERE i.id IN (SELECT value FROM json_each(?))""",
        [wanted],
    )
    for image_id, class_id, name, *box in rows:
        labels = out.setdefault(image_id, ImageLabels(Counter(), {}))
        labels.classes[class_id] += 1
        if name:
            labels.names[class_id] = name
        if None not in box:
            labels.boxes.setdefault(class_id, []).append((box[0], box[1], box[2], box[3]))
    return out


def key(labels: ImageLabels | None) -> Hashable:
    """Equal for label sets that are the same (None for unknown labels)."""
    if labels is None:
        return None
    boxes = tuple(sorted((str(c), tuple(sorted(b))) for c, b in labels.boxes.items()))
    return tuple(sorted((str(c), n) for c, n in labels.classes.items())), boxes


def compare(a: ImageLabels | None, b: ImageLabels | None) -> Disagreement | None:
    """How two label sets disagree; None when they agree or either is unknown."""
    if a is None or b is None:
        return None
    if a.classes != b.classes:
        return Disagreement("classes differ", _class_difference(a.classes, b.classes, {**b.names, **a.names}))
    unmatched = sum(_unmatched(a.boxes.get(c, []), b.boxes.get(c, [])) for c in a.classes)
    if unmatched:
        return Disagreement("boxes differ", f"{unmatched} box(es) without a match of IoU >= {MIN_IOU}")
    return None


def differ(a: ImageLabels | None, b: ImageLabels | None) -> bool:
    """Whether compare(a, b) finds a disagreement (without describing it)."""
    if a is None or b is None:
        return False
    if a.classes != b.classes:
        return True
    return any(_unmatched(a.boxes.get(c, []), b.boxes.get(c, [])) for c in a.classes)


GRID = 16  # the cells of imgindex.near.verify's comparison grid per side


def on_object(labels: ImageLabels | None, cell: int) -> bool:
    """Whether a cell of the comparison grid (row-major index) lies on a labelled box, give or
    take half a cell; False when the labels are unknown or hold no boxes."""
    if labels is None:
        return False
    x, y = (cell % GRID + 0.5) / GRID, (cell // GRID + 0.5) / GRID
    margin = 0.5 / GRID
    return any(
        abs(x - cx) <= w / 2 + margin and abs(y - cy) <= h / 2 + margin
        for boxes in labels.boxes.values()
        for cx, cy, w, h in boxes
    )


def _class_difference(a: Counter[int | None], b: Counter[int | None], names: dict[int | None, str]) -> str:
    only_a, only_b = a - b, b - a
    first, second = _counted(only_a, names), _counted(only_b, names)
    return f"first has {first or 'nothing more'}; second has {second or 'nothing more'}"


def _counted(classes: Counter[int | None], names: dict[int | None, str]) -> str:
    return ", ".join(f"{n} x {_class(c, names)}" for c, n in sorted(classes.items(), key=lambda kv: str(kv[0])))


def _class(class_id: int | None, names: dict[int | None, str]) -> str:
    """A class as people read it: its name and id ('white-pawn (class 11)'), or its id alone."""
    return f"{names[class_id]} (class {class_id})" if class_id in names else f"class {class_id}"


def _unmatched(a: list[Box], b: list[Box]) -> int:
    """Boxes of a left without a box of b (each used once) overlapping at MIN_IOU, greedily."""
    free = list(b)
    missing = 0
    for box in a:
        scores = [iou(box, other) for other in free]
        best = max(range(len(free)), key=scores.__getitem__, default=None)
        if best is None or scores[best] < MIN_IOU:
            missing += 1
        else:
            free.pop(best)
    return missing + len(free)


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two (cx, cy, w, h) boxes."""
    ax1, ay1, ax2, ay2 = a[0] - a[2] / 2, a[1] - a[3] / 2, a[0] + a[2] / 2, a[1] + a[3] / 2
    bx1, by1, bx2, by2 = b[0] - b[2] / 2, b[1] - b[3] / 2, b[0] + b[2] / 2, b[1] + b[3] / 2
    inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 1.0 if a == b else 0.0
