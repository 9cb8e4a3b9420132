"""The stored quality flags as `imgindex quality` prints them: the rule, a table of counts per
split, then the flagged images of each flag."""

from __future__ import annotations

from collections.abc import Sequence

from ..walk import printable
from . import Quality
from .flags import FLAGS


def describe(quality: Quality, flags: Sequence[str] = (), limit: int = 10) -> list[str]:
    """Lines: the rule applied, images per split and flag, then up to ``limit`` images of each
    flag (of ``flags`` only, when given; every one when ``limit`` is 0)."""
    shown = [flag.name for flag in FLAGS if not flags or flag.name in flags]
    lines = ["Quality flags, the rule applied:", *(f"  {line}" for line in quality.rule), ""]
    lines += counts_table(quality, shown)
    for name in shown:
        lines += flagged_lines(quality, name, limit)
    return lines


def counts_table(quality: Quality, shown: Sequence[str]) -> list[str]:
    """A fixed-width table: one row per split, its readable images and the images of each flag."""
    if not quality.images:
        return ["No readable images with quality measures: scan a folder first (imgindex scan)."]
    headers = ["split", "images", *shown]
    rows = [
        [split, str(n), *(str(quality.counts[split].get(f, 0)) for f in shown)] for split, n in quality.images.items()
    ]
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    return [
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
        for row in [headers, *rows]
    ]


def flagged_lines(quality: Quality, name: str, limit: int) -> list[str]:
    """The images carrying one flag, with the value each was judged on."""
    images = [entry for entry in quality.flagged if name in entry["flags"]]
    if not images:
        return []
    measure = next(flag.measure for flag in FLAGS if flag.name == name)
    listed = images if limit == 0 else images[:limit]
    lines = ["", f"{name}: {len(images)} image{'s' if len(images) != 1 else ''} ({measure} shown)"]
    lines += [f"  {entry['split']}  {printable(entry['path'])}  {_value(entry['flags'][name])}" for entry in listed]
    if len(listed) < len(images):
        lines.append(f"  ... and {len(images) - len(listed)} more (--limit 0 lists them all)")
    return lines


def _value(value: object) -> str:
    """A flagged image's measure as printed; an image without it (a flat one has no sharpness) says so."""
    return "(no value)" if value is None else str(value)
