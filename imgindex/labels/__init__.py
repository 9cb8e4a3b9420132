"""Labels: the label formats and their registry (formats/), indexing their files (indexing), and
the questions asked when rows have no known layout (prompt)."""

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
