"""The report: queries -> feature stats -> plots -> Report.pdf + summary.json (DataGradients' layout).

Reads only the database; no image file is opened.
"""

from .build import FINISHED, ReportError, ReportOutcome, build_report
from .config import ConfigError

__all__ = ["FINISHED", "ConfigError", "ReportError", "ReportOutcome", "build_report"]
