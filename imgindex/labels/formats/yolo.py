"""YOLO txt labels: one file per image under labels/, rows `class cx cy w h` normalised (or a
polygon's points), class names from data.yaml / classes.txt."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .base import LabelPlan
from .custom import FORMAT as CUSTOM
from .rows import YOLO, looks_like_yolo, numeric_rows
from .textrows import TextRowsFormat, list_text_files, read_or_empty

SAMPLE_FILES = 20  # label files read to tell YOLO from a custom layout
SAMPLE_ROWS = 200


def rows_look_like_yolo(label_dir: Path) -> bool:
    """Do the first label files hold YOLO rows (and no .csv file among them)?"""
    files = list_text_files(label_dir)[:SAMPLE_FILES]
    rows = [row for f in files for row in numeric_rows(read_or_empty(f), SAMPLE_ROWS)]
    return looks_like_yolo(rows) and not any(f.suffix.lower() == ".csv" for f in files)


class YoloFormat(TextRowsFormat):
    name = "yolo"
    detect_order = 20

    def detect(self, split: str, root: Path) -> LabelPlan | None:
        plan = self.find(split, root)
        if plan is None or plan.label_dir is None:
            return None
        return plan if rows_look_like_yolo(plan.label_dir) else None

    def under_row_options(self, plan: LabelPlan, label_first: bool | None, bbox_format: str | None) -> LabelPlan:
        """Row options other than YOLO's make a detected YOLO folder a custom layout."""
        if label_first is False or bbox_format not in (None, YOLO.bbox_format):
            return replace(plan, format=CUSTOM.name, reason=plan.reason + " (row options)")
        return plan


FORMAT = YoloFormat()
