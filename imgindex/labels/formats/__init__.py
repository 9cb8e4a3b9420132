"""Label formats: one module per format (yolo, coco, voc, folders, custom, none) implementing the
interface of base.LabelFormat, the registry listing them, and detection and reading through it.
Pure parsing of each format's files lives beside its format (rows, coco, voc)."""

from . import coco, custom, folders, none, voc, yolo
from .base import ClassTable, LabelError, LabelFormat, LabelPlan, Reading, Watched
from .detect import detect, in_split, label_files
from .images import ImageIndex
from .model import PROBLEM_KINDS, Box, Label, Parsed, Problem
from .read import read_label_file
from .registry import CHOICES, FORMATS, get, register, unregister
from .rows import Convention

# The built-in formats, in the order `--labels` lists them.
register(yolo.FORMAT)
register(coco.FORMAT)
register(voc.FORMAT)
register(folders.FORMAT)
register(custom.FORMAT)
register(none.FORMAT)

__all__ = [
    "CHOICES",
    "FORMATS",
    "PROBLEM_KINDS",
    "Box",
    "ClassTable",
    "Convention",
    "ImageIndex",
    "Label",
    "LabelError",
    "LabelFormat",
    "LabelPlan",
    "Parsed",
    "Problem",
    "Reading",
    "Watched",
    "detect",
    "get",
    "in_split",
    "label_files",
    "read_label_file",
    "register",
    "unregister",
]
