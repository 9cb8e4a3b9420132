"""Read one label file of a plan against the split's images: the pure core of label indexing."""

from __future__ import annotations

from pathlib import Path

from .base import LabelPlan, Reading
from .images import ImageIndex
from .model import Parsed
from .registry import get
from .rows import Convention

__all__ = ["ImageIndex", "read_label_file"]


def read_label_file(
    plan: LabelPlan, path: Path, images: ImageIndex, names: dict[int, str] | None, convention: Convention | None = None
) -> Parsed:
    """Labels and problems of one label file of `plan`; never raises for bad content."""
    return get(plan.format).read(plan, path, Reading(images, names, convention))
