"""summary.json: metadata, data_config, errors, features. Strict JSON (no NaN or Infinity)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from .. import __version__
from . import db
from .features import FeatureResult
from .stats import json_safe

# Settings that answer the label questions (class id or box first, box layout); the others are
# the scanner's own bookkeeping.
ANSWER_KEYS = ("labels.label_first", "labels.bbox_format")


def data_config(conn: sqlite3.Connection, db_path: Path) -> dict[str, Any]:
    stored = db.settings(conn)
    return {
        "database": str(db_path),
        "splits": db.split_roots(conn),
        "label_format": db.label_formats(conn, stored),
        "answers": {k: v for k, v in stored.items() if k in ANSWER_KEYS or k.startswith(ANSWER_KEYS)},
    }


def feature_json(result: FeatureResult) -> dict[str, Any]:
    return {
        "title": result.title,
        "name": result.name,
        "description": result.description,
        "notices": result.notices,
        "stats": result.stats,
    }


def document(
    title: str, timestamp: str, config: dict[str, Any], errors: list[dict[str, str]], results: list[FeatureResult]
) -> dict[str, Any]:
    return json_safe(
        {
            "metadata": {"version": __version__, "report_title": title, "timestamp": timestamp},
            "data_config": config,
            "errors": errors,
            "features": [feature_json(r) for r in results],
        }
    )


def write(path: Path, doc: dict[str, Any]) -> None:
    path.write_text(json.dumps(doc, indent=2, allow_nan=False, ensure_ascii=False) + "\n", encoding="utf-8")
