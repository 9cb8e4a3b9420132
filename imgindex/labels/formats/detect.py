"""Which label format a split folder uses, and the files and images of a plan, as its format says."""

from __future__ import annotations

from pathlib import Path

from .base import LabelError, LabelPlan
from .registry import detection_order, file_format, get


def detect(split: str, root: Path, override: str | None = None, coco: Path | None = None) -> LabelPlan:
    """The label plan of `root`: the `override` format's (or that of the `coco` label file) when
    given, else the first format, in detection order, that recognises the folder."""
    root = root.resolve()
    named = get(override) if override is not None else file_format() if coco is not None else None
    if named is not None:
        return named.forced_plan(split, root, coco if named.takes_label_file else None)
    for fmt in detection_order():
        plan = fmt.detect(split, root)
        if plan is not None:
            return plan
    raise LabelError(f"no label format recognises split {split!r} ({root}); name one with --labels")


def label_files(plan: LabelPlan) -> list[Path]:
    """The files (class folders for 'folders') whose content defines the split's labels."""
    return get(plan.format).files(plan)


def in_split(plan: LabelPlan, image_path: str) -> bool:
    """False for images the plan leaves out of its split (a VOC ImageSets list); True otherwise."""
    keep = get(plan.format).image_filter(plan)
    return keep is None or keep(image_path)
