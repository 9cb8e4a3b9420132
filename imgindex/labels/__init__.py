"""Labels: the label formats and their registry (formats/), the plans and options of a scan
(setup), indexing the label files into the database (indexing, files), and the questions asked
when rows have no known layout (prompt)."""

from .indexing import (
    LabelOptions,
    LabelSetup,
    LabelSummary,
    MissingAnswers,
    index_labels,
    prepare,
    remember_options,
)

__all__ = [
    "LabelOptions",
    "LabelSetup",
    "LabelSummary",
    "MissingAnswers",
    "index_labels",
    "prepare",
    "remember_options",
]
