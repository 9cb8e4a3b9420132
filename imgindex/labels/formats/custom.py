"""Text label files whose rows follow no known convention (rows of 5 numbers, CSV): read with the
row convention the user gives (class id first or last, box layout, pixels or normalised)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .base import LabelPlan
from .textrows import TextRowsFormat


class CustomFormat(TextRowsFormat):
    """A labels/ folder that YOLO detection turned down; tried right after YOLO."""

    name = "custom"
    detect_order = 30
    polygons = False
    asks_row_convention = True

    def detect(self, split: str, root: Path) -> LabelPlan | None:
        plan = self.find(split, root)
        return None if plan is None else replace(plan, reason=plan.reason + " whose rows are not YOLO's")


FORMAT = CustomFormat()
