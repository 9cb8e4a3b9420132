"""A hint when a split gets no labels although label-like files lie near its images: the scan's
summary says where, so a layout imgindex does not detect is not taken for an unlabelled split."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from .formats.base import LabelPlan

LABEL_SUFFIXES = (".txt", ".xml", ".json")
NOT_LABELS = ("readme", "license", "licence", "classes", "notes", "requirements")
NEAR_FOLDERS = 40  # folders looked into: the split's own and its parent's, one level down
# a name with one of LABEL_SUFFIXES, as os.path.splitext sees it (leading dots are no suffix)
_LABEL_NAME = re.compile(r"\.*[^.].*\.(txt|xml|json)\Z", re.IGNORECASE | re.DOTALL)


def unread_label_hints(plans: Mapping[str, Sequence[LabelPlan]], splits: Mapping[str, Sequence[Path]]) -> list[str]:
    """One sentence per split whose folders were all planned without labels and beside which
    label-like files lie."""
    hints = []
    for split, roots in splits.items():
        if any(p.format != "none" for p in plans.get(split, [])):
            continue
        found = _label_like(roots)
        if found:
            folder, counts = found
            what = ", ".join(f"{n} {suffix}" for suffix, n in counts.most_common())
            hints.append(
                f"{split}: no labels found, but {what} file(s) lie in {folder} (labels are read from labels/ beside "
                "images/, Annotations/, a COCO json in the folder or --coco, class folders; --labels names a format)"
            )
    return hints


def _label_like(roots: Sequence[Path]) -> tuple[Path, Counter[str]] | None:
    """The nearby folder holding most label-like files, and their counts by suffix."""
    best: tuple[Path, Counter[str]] | None = None
    for folder in _near(roots):
        counts = Counter(
            "." + match.group(1).lower()
            for match in _label_files(folder)
            if not match.string.lower().startswith(NOT_LABELS)
        )
        if counts and (best is None or sum(counts.values()) > sum(best[1].values())):
            best = (folder, counts)
    return best


def _near(roots: Sequence[Path]) -> list[Path]:
    folders: list[Path] = []
    for root in roots:
        for base in (root, root.parent):
            folders += [base, *sorted(p for p in _subfolders(base))]
    return list(dict.fromkeys(folders))[:NEAR_FOLDERS]


def _subfolders(folder: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(folder) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def _label_files(folder: Path) -> list[re.Match[str]]:
    """The files of a folder named like labels, as matches of _LABEL_NAME (its group: the suffix).
    The names are matched in C, so that a folder of many images costs a listing, not a Python step
    per name."""
    try:
        named = list(filter(None, map(_LABEL_NAME.match, os.listdir(folder))))
    except OSError:
        return []
    return [match for match in named if os.path.isfile(os.path.join(folder, match.string))]
