"""Text label files with one box per row: YOLO txt and formats without a convention (rows of 5 numbers, CSV)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .model import (
    MALFORMED_ROW,
    POLYGON_ROW,
    BoxFormat,
    Parsed,
    Problem,
    Size,
    add_box,
    class_name,
    parse_class_id,
    valid_class_id,
)

_SPLIT = re.compile(r"[\s,;]+")


@dataclass(frozen=True)
class Convention:
    """How a row is laid out: the answers to DataGradients' two questions."""

    label_first: bool = True
    box_format: BoxFormat = "cxcywh"
    normalised: bool = True

    @property
    def bbox_format(self) -> str:
        """The `--bbox-format` spelling: xyxy, xywh, cxcywh, with '-norm' when normalised."""
        return f"{self.box_format}-norm" if self.normalised else self.box_format


YOLO = Convention()


def parse_bbox_format(text: str) -> tuple[BoxFormat, bool]:
    """'cxcywh-norm' -> ('cxcywh', True); 'xyxy' -> ('xyxy', False)."""
    base, _, suffix = text.partition("-")
    if base not in ("xyxy", "xywh", "cxcywh") or suffix not in ("", "norm"):
        raise ValueError(f"unknown bbox format {text!r}")
    return base, suffix == "norm"  # type: ignore[return-value]


def split_row(line: str) -> list[str]:
    return [t for t in _SPLIT.split(line.strip()) if t]


def numeric_rows(text: str, limit: int | None = None) -> list[list[float]]:
    """Rows made only of numbers (header lines and malformed rows left out), at most `limit`."""
    rows: list[list[float]] = []
    for line in text.splitlines():
        try:
            rows.append([float(t) for t in split_row(line)])
        except ValueError:
            continue
        if not rows[-1]:
            rows.pop()
        if limit is not None and len(rows) >= limit:
            break
    return rows


def _polygon_values(numbers: list[float]) -> tuple[float, float, float, float]:
    xs, ys = numbers[0::2], numbers[1::2]
    return min(xs), min(ys), max(xs), max(ys)


def parse_rows(
    text: str,
    path: str,
    image_path: str | None,
    size: Size | None,
    names: dict[int, str] | None,
    convention: Convention = YOLO,
    polygons: bool = True,
) -> Parsed:
    """Parse every row of a text label file. Without polygons (a file of a custom format), a first
    line made of words only (a CSV header) is skipped."""
    parsed = Parsed(images=[image_path] if image_path else [])
    for number, line in enumerate(text.splitlines(), start=1):
        tokens = split_row(line)
        if not tokens or (number == 1 and not polygons and not any(_is_number(t) for t in tokens)):
            continue
        _parse_row(parsed, tokens, (path, number), image_path, size, names, convention, polygons)
    return parsed


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _parse_row(
    parsed: Parsed,
    tokens: list[str],
    where: tuple[str, int],
    image_path: str | None,
    size: Size | None,
    names: dict[int, str] | None,
    convention: Convention,
    polygons: bool,
) -> None:
    try:
        values = [float(t) for t in tokens]
    except ValueError:
        parsed.problems.append(Problem(MALFORMED_ROW, where[0], where[1], f"not numbers: {' '.join(tokens)[:200]}"))
        return
    id_token = tokens[0] if convention.label_first else tokens[-1]
    numbers = values[1:] if convention.label_first else values[:-1]
    class_id = parse_class_id(id_token)
    if class_id is None:
        parsed.problems.append(
            Problem(MALFORMED_ROW, where[0], where[1], f"class id {id_token!r} is not an integer >= 0")
        )
        return
    if len(numbers) != 4:
        if not (polygons and len(numbers) >= 6 and len(numbers) % 2 == 0):
            parsed.problems.append(
                Problem(
                    MALFORMED_ROW,
                    where[0],
                    where[1],
                    f"{len(tokens)} values; a box row has 5 (class id and 4 coordinates)",
                )
            )
            return
        parsed.problems.append(
            Problem(
                POLYGON_ROW,
                where[0],
                where[1],
                f"polygon of {len(numbers) // 2} points in a detection file; its bounding box was indexed",
            )
        )
        fmt: BoxFormat = "xyxy"
        box = _polygon_values(numbers)
    else:
        fmt = convention.box_format
        box = (numbers[0], numbers[1], numbers[2], numbers[3])
    name = class_name(parsed, where, class_id, names)
    add_box(parsed, where, image_path, (class_id, name), box, (fmt, convention.normalised), size)


def looks_like_yolo(rows: list[list[float]]) -> bool:
    """True when most sample rows fit YOLO: an integer class id, then 4 numbers (or a polygon's
    pairs) within 0..1. A layout without a convention fits almost never; a YOLO file with a few
    bad rows still counts as YOLO (the bad rows become problems)."""
    if not rows:
        return True
    return sum(1 for row in rows if _fits_yolo(row)) * 2 > len(rows)


def _fits_yolo(row: list[float]) -> bool:
    if len(row) != 5 and (len(row) < 7 or len(row) % 2 == 0):
        return False
    if not valid_class_id(row[0]):
        return False
    return all(-0.05 <= v <= 1.05 for v in row[1:])
