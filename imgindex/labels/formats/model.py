"""Label records shared by every format: boxes, labels, problems, parse results, box conversion."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, TypeGuard

Size = tuple[int, int]  # (width, height) in pixels
BoxFormat = Literal["xyxy", "xywh", "cxcywh"]

# Problem kinds recorded in label_problems.kind.
MALFORMED_ROW = "malformed_row"
POLYGON_ROW = "polygon_row"
UNNAMED_CLASS = "unnamed_class"
BOX_OUTSIDE_IMAGE = "box_outside_image"
ZERO_AREA_BOX = "zero_area_box"
LABEL_WITHOUT_IMAGE = "label_without_image"
IMAGE_WITHOUT_LABEL = "image_without_label"
MISSING_IMAGE_FILE = "missing_image_file"
UNREADABLE_FILE = "unreadable_file"
IMAGE_SIZE_UNKNOWN = "image_size_unknown"
PROBLEM_KINDS = (
    MALFORMED_ROW,
    POLYGON_ROW,
    UNNAMED_CLASS,
    BOX_OUTSIDE_IMAGE,
    ZERO_AREA_BOX,
    LABEL_WITHOUT_IMAGE,
    IMAGE_WITHOUT_LABEL,
    MISSING_IMAGE_FILE,
    UNREADABLE_FILE,
    IMAGE_SIZE_UNKNOWN,
)

MAX_CLASS_ID = 2**31 - 1  # class ids are stored as SQLite integers; larger ones are malformed
MAX_COORDINATE = 1e7  # a box number past this (pixels or normalised) belongs to no image
EPS = 1e-6  # tolerance on normalised coordinates (float text round-off)


@dataclass(frozen=True)
class Box:
    """One box: normalised centre/size, pixel corners (None without the image size), area fraction."""

    cx: float | None
    cy: float | None
    w: float | None
    h: float | None
    x1: float | None
    y1: float | None
    x2: float | None
    y2: float | None
    area: float | None


@dataclass(frozen=True)
class Label:
    """One annotation: a box with its class, or a class alone (classification, box None)."""

    image_path: str | None
    class_id: int | None
    class_name: str | None
    box: Box | None = None


@dataclass(frozen=True)
class Problem:
    kind: str
    path: str | None
    line: int | None
    detail: str


@dataclass
class Parsed:
    """What one label file says: its labels, its problems, the images it covers, or why it is unreadable."""

    labels: list[Label] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    error: str | None = None
    classes: dict[int, str] = field(default_factory=dict)  # classes the file defines (COCO categories)


def _to_xyxy(values: tuple[float, float, float, float], fmt: BoxFormat) -> tuple[float, float, float, float]:
    a, b, c, d = values
    if fmt == "xyxy":
        return a, b, c, d
    if fmt == "xywh":
        return a, b, a + c, b + d
    return a - c / 2, b - d / 2, a + c / 2, b + d / 2


def make_box(values: tuple[float, float, float, float], fmt: BoxFormat, normalised: bool, size: Size | None) -> Box:
    """Convert four numbers in `fmt` (normalised 0..1 or pixels) to a Box; pixel or normalised
    halves stay None when the image size is needed and unknown."""
    x1, y1, x2, y2 = _to_xyxy(values, fmt)
    usable = size if size and size[0] > 0 and size[1] > 0 else None
    n: tuple[float, float, float, float] | None = (x1, y1, x2, y2)
    p: tuple[float, float, float, float] | None = (x1, y1, x2, y2)
    if normalised:
        p = (x1 * usable[0], y1 * usable[1], x2 * usable[0], y2 * usable[1]) if usable else None
    else:
        n = (x1 / usable[0], y1 / usable[1], x2 / usable[0], y2 / usable[1]) if usable else None
    px1, py1, px2, py2 = p if p else (None, None, None, None)
    if n is None:
        return Box(None, None, None, None, px1, py1, px2, py2, None)
    if normalised and fmt == "cxcywh":  # YOLO: keep the numbers as written
        cx, cy, w, h = values
    else:
        w, h = n[2] - n[0], n[3] - n[1]
        cx, cy = (n[0] + n[2]) / 2, (n[1] + n[3]) / 2
    return Box(cx, cy, w, h, px1, py1, px2, py2, w * h)


def _in_pixels(box: Box) -> str:
    """' (normalised; -5 x 4 pixels)' when the box's pixels are known too, else ' (normalised)'."""
    if None in (box.x1, box.y1, box.x2, box.y2):
        return " (normalised)"
    assert box.x1 is not None and box.x2 is not None and box.y1 is not None and box.y2 is not None
    return f" (normalised; {box.x2 - box.x1:g} x {box.y2 - box.y1:g} pixels)"


def box_problems(box: Box, values: tuple[float, ...]) -> list[tuple[str, str]]:
    """(kind, detail) pairs for a box of zero/negative area or reaching outside the image."""
    found: list[tuple[str, str]] = []
    text = _Text(values)
    if box.w is not None and box.h is not None:
        if box.w <= 0 or box.h <= 0:
            found.append((ZERO_AREA_BOX, f"box {text} has width {box.w:g} and height {box.h:g}{_in_pixels(box)}"))
        assert box.cx is not None and box.cy is not None
        left, top = box.cx - box.w / 2, box.cy - box.h / 2
        right, bottom = box.cx + box.w / 2, box.cy + box.h / 2
        if min(left, top, right, bottom) < -EPS or max(left, top, right, bottom) > 1 + EPS:
            found.append(
                (
                    BOX_OUTSIDE_IMAGE,
                    f"box {text} reaches outside the image "
                    f"(normalised x {left:.4g}..{right:.4g}, y {top:.4g}..{bottom:.4g})",
                )
            )
    elif box.x1 is not None and box.x2 is not None and box.y1 is not None and box.y2 is not None:  # noqa: SIM102
        if box.x2 <= box.x1 or box.y2 <= box.y1:
            found.append((ZERO_AREA_BOX, f"box {text} has no area"))
    return found


class _Text:
    """The box's numbers as written, formatted only when a problem is reported."""

    def __init__(self, values: tuple[float, ...]) -> None:
        self.values = values

    def __format__(self, spec: str) -> str:
        return " ".join(f"{v:g}" for v in self.values)


def valid_class_id(value: object) -> TypeGuard[int | float]:
    """A whole number from 0 to MAX_CLASS_ID (not a bool, NaN or infinity)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) and 0 <= value <= MAX_CLASS_ID and value == int(value)


def parse_class_id(text: str) -> int | None:
    """An integer class id from '3' or '3.0'; None for anything else (negative, fractional, text,
    not finite, past MAX_CLASS_ID)."""
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if valid_class_id(value) else None


def unusable_number(values: tuple[float, ...]) -> str | None:
    """Why a box's numbers cannot be a box (NaN, infinity, past MAX_COORDINATE); None when they can."""
    for value in values:
        if not math.isfinite(value):
            return f"{value:g} is not a finite number"
        if abs(value) > MAX_COORDINATE:
            return f"{value:g} is out of range (at most {MAX_COORDINATE:g} in size)"
    return None


def add_box(
    parsed: Parsed,
    where: tuple[str, int | None],
    image_path: str | None,
    cls: tuple[int | None, str | None],
    values: tuple[float, float, float, float],
    convention: tuple[BoxFormat, bool],
    size: Size | None,
) -> None:
    """Append one box label to `parsed`, with its zero-area / outside-image problems; numbers that
    cannot be a box make a malformed_row problem instead."""
    unusable = unusable_number(values)
    if unusable is not None:
        parsed.problems.append(Problem(MALFORMED_ROW, where[0], where[1], f"box {_Text(values)}: {unusable}"))
        return
    box = make_box(values, convention[0], convention[1], size)
    parsed.labels.append(Label(image_path, cls[0], cls[1], box))
    for kind, detail in box_problems(box, values):
        parsed.problems.append(Problem(kind, where[0], where[1], detail))


def class_name(
    parsed: Parsed, where: tuple[str, int | None], class_id: int, names: dict[int, str] | None
) -> str | None:
    """The name of `class_id`; records unnamed_class when a names list exists but lacks the id."""
    if names is None:
        return None
    name = names.get(class_id)
    if name is None:
        parsed.problems.append(
            Problem(
                UNNAMED_CLASS, where[0], where[1], f"class id {class_id} has no name (known ids: {_id_range(names)})"
            )
        )
    return name


def _id_range(names: dict[int, str]) -> str:
    ids = sorted(names)
    if not ids:
        return "none"
    return f"{ids[0]}..{ids[-1]}" if ids == list(range(ids[0], ids[-1] + 1)) else ", ".join(map(str, ids))
