"""imgindex: an incremental SQLite index of image datasets.

The library API is :class:`Index` (see imgindex.api); the command line (imgindex.cli) is a thin
layer over it. The names below are imported when first used, so that the command can set up its
process before NumPy loads (imgindex.__main__).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Index", "LabelOptions", "MissingAnswers", "ScanSummary", "SplitFolderError", "__version__"]
_HOMES = {
    "Index": "api",
    "LabelOptions": "labels",
    "MissingAnswers": "labels",
    "ScanSummary": "scan",
    "SplitFolderError": "api",
}

if TYPE_CHECKING:
    from .api import Index, SplitFolderError
    from .labels import LabelOptions, MissingAnswers
    from .scan import ScanSummary


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'imgindex' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
