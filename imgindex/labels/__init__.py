"""Labels: the label formats and their registry (formats/), the plans and options of a scan
(setup), indexing the label files into the database (indexing, files), and the questions asked
when rows have no known layout (prompt)."""

from .hints import unread_label_hints
from .indexing import LabelSummary, index_labels, mark_pending
from .setup import LabelOptions, LabelSetup, MissingAnswers, keep_image, prepare, remember_options

__all__ = [
    "LabelOptions",
    "LabelSetup",
    "LabelSummary",
    "MissingAnswers",
    "index_labels",
    "keep_image",
    "mark_pending",
    "prepare",
    "remember_options",
    "unread_label_hints",
]
