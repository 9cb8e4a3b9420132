"""LabelProblems: every row of label_problems, grouped by kind, the files with most problems first."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..db import LabelProblem, split_sort_key
from .base import Context, FeatureResult

FILES_PER_KIND = 10  # files listed per kind in the PDF; summary.json lists every problem
WIDTHS = [0.24, 0.38, 0.08, 0.30]

MEANING = {
    "malformed_row": "rows that are not a class id and 4 numbers",
    "polygon_row": "segmentation polygons in a detection file (their bounding box is indexed)",
    "unnamed_class": "class ids missing from the names list, or no names file",
    "box_outside_image": "boxes reaching outside the image",
    "zero_area_box": "boxes of zero or negative width or height",
    "label_without_image": "label files without an image; their boxes count in no statistic",
    "image_without_label": "images that no label file covers",
    "missing_image_file": "annotations of an image that is not in the split",
    "unreadable_file": "label files that cannot be read as a whole",
    "image_size_unknown": "annotated images that could not be read",
}


@dataclass
class FileProblems:
    """The problems of one kind in one file."""

    split: str
    path: str
    problems: list[LabelProblem]


def by_kind(problems: list[LabelProblem]) -> dict[str, list[FileProblems]]:
    """kind -> its files, most problems first; kinds with most problems first."""
    groups: dict[str, dict[tuple[str, str], list[LabelProblem]]] = {}
    for problem in problems:
        groups.setdefault(problem.kind, {}).setdefault((problem.split, problem.path), []).append(problem)
    out: dict[str, list[FileProblems]] = {}
    for kind, files in sorted(groups.items(), key=lambda item: (-sum(map(len, item[1].values())), item[0])):
        listed = [FileProblems(split, path, rows) for (split, path), rows in files.items()]
        out[kind] = sorted(listed, key=lambda f: (-len(f.problems), split_sort_key(f.split), f.path))
    return out


def label_problems(ctx: Context, params: Mapping[str, Any]) -> FeatureResult | None:
    problems = ctx.problem_rows
    if not problems:
        return None
    groups = by_kind(problems)
    base = common_folder([p.path for p in problems] + [r for roots in ctx.roots.values() for r in roots])
    limit = int(params.get("files_per_kind", FILES_PER_KIND))
    rows = [["Problem", "File", "Count", "First problem of the file"]]
    for kind, files in groups.items():
        rows += _kind_rows(kind, files, base, limit)
    where = f" Paths are relative to {base}." if base else ""
    return FeatureResult(
        name="LabelProblems",
        title="Label Problems",
        description=f"The {len(problems)} problems the scan found in the labels, grouped by kind, the files "
        f"with most problems first (at most {limit} files per kind here; summary.json lists every "
        f"problem).{where}",
        stats=_stats(ctx.splits, groups),
        table=rows,
        table_widths=WIDTHS,
    )


def _stats(splits: list[str], groups: dict[str, list[FileProblems]]) -> dict[str, Any]:
    """split -> kind -> every problem, in the order of the PDF."""
    stats: dict[str, dict[str, list[dict[str, Any]]]] = {}
    present = {f.split for files in groups.values() for f in files}
    for split in [s for s in splits if s in present] + sorted(present - set(splits)):
        stats[split] = {}
    for kind, files in groups.items():
        for f in files:
            stats[f.split].setdefault(kind, []).extend(
                {"path": p.path, "line": p.line, "detail": p.detail} for p in f.problems
            )
    return stats


def _kind_rows(kind: str, files: list[FileProblems], base: str, limit: int) -> list[list[str]]:
    total = sum(len(f.problems) for f in files)
    meaning = MEANING.get(kind)
    head = f"{kind}: {total} in {len(files)} file(s)" + (f" ({meaning})" if meaning else "")
    rows = [
        [head if n == 0 else "", _file(f, base), str(len(f.problems)), _first(f, base)]
        for n, f in enumerate(files[:limit])
    ]
    hidden = files[limit:]
    if hidden:
        n = sum(len(f.problems) for f in hidden)
        rows.append(["", f"and {len(hidden)} more file(s) with {n} problem(s)", "", ""])
    return rows


def _file(f: FileProblems, base: str) -> str:
    path = os.path.relpath(f.path, base) if base and f.path.startswith(base + os.sep) else f.path
    return f"{f.split}: {path}" if path else f.split


def _first(f: FileProblems, base: str) -> str:
    first = f.problems[0]
    detail = first.detail.replace(base + os.sep, "") if base else first.detail
    return f"line {first.line}: {detail}" if first.line is not None else detail


def common_folder(paths: list[str]) -> str:
    """The deepest folder holding all absolute paths; '' when they share only the root."""
    absolute = [p for p in paths if os.path.isabs(p)]
    if not absolute or len(absolute) < len([p for p in paths if p]):
        return ""
    common = os.path.commonpath(absolute)
    if common in absolute and not any(p.startswith(common + os.sep) for p in absolute):
        common = os.path.dirname(common)  # one file: its folder
    return "" if common == os.path.dirname(common) else common
