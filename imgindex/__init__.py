"""imgindex: an incremental SQLite index of image datasets.

The library API is :class:`Index` (see imgindex.api); the command line (imgindex.cli) is a thin
layer over it.
"""

__version__ = "0.1.0"

from .api import Index
from .labels import LabelOptions, MissingAnswers
from .scan import ScanSummary

__all__ = ["Index", "LabelOptions", "MissingAnswers", "ScanSummary", "__version__"]
