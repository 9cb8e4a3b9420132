"""Label formats: detection per split folder and pure parsing of YOLO, COCO, Pascal VOC, class folders
and row formats without a convention."""

from .detect import CHOICES, LabelError, LabelPlan, detect, label_files
from .model import PROBLEM_KINDS, Box, Label, Parsed, Problem
from .read import ImageIndex, read_label_file
from .rows import Convention

__all__ = [
    "CHOICES",
    "PROBLEM_KINDS",
    "Box",
    "Convention",
    "ImageIndex",
    "Label",
    "LabelError",
    "LabelPlan",
    "Parsed",
    "Problem",
    "detect",
    "label_files",
    "read_label_file",
]
