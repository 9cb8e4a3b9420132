"""No labels: the split's images are indexed alone. Detected last, when no other format fits."""

from __future__ import annotations

import math
from pathlib import Path

from .base import LabelFormat, LabelPlan, Reading, Watched
from .model import Parsed


class NoLabels(LabelFormat):
    name = "none"
    detect_order = math.inf
    expects_labels = False

    def detect(self, split: str, root: Path) -> LabelPlan | None:
        return LabelPlan(split, root, self.name, reason="no labels found")

    def forced_plan(self, split: str, root: Path, file: Path | None = None) -> LabelPlan:
        return LabelPlan(split, root, self.name, reason="--labels none")

    def files(self, plan: LabelPlan) -> list[Path]:
        return []

    def watched(self, plan: LabelPlan) -> Watched:
        return Watched()

    def read(self, plan: LabelPlan, path: Path, reading: Reading) -> Parsed:
        return Parsed()


FORMAT = NoLabels()
