"""No labels: the split's images are indexed alone. Detected last, when no other format fits."""

from __future__ import annotations

import math
from pathlib import Path

from .base import LabelFormat, LabelPlan, Reading
from .model import Parsed


class NoLabels(LabelFormat):
    """Owns no files; its plan always fits, so it is the last format tried."""

    name = "none"
    detect_order = math.inf
    expects_labels = False

    def detect(self, split: str, root: Path) -> LabelPlan | None:
        return LabelPlan(split, root, self.name, reason="no labels found")

    def forced_plan(self, split: str, root: Path, file: Path | None = None) -> LabelPlan:
        return LabelPlan(split, root, self.name, reason="--labels none")

    def read(self, plan: LabelPlan, path: Path, reading: Reading) -> Parsed:
        return Parsed()


FORMAT = NoLabels()
