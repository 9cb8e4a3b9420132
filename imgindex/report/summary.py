"""summary.json: metadata, data_config, errors, features. Strict JSON (no NaN or Infinity)."""

from __future__ import annotations

import html
import json
import re
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

# A tag of the PDF's paragraph markup (<b>, </b>, <br/>, <font ...>); "a < b" is not one.
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(\s[^<>]*)?/?>")


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
        "description": plain_text(result.description),
        "notices": result.notices,
        "stats": result.stats,
    }


def plain_text(markup: str) -> str:
    """A description as plain text: the PDF's markup tags dropped, entities (&amp;) decoded."""
    return html.unescape(_TAG.sub("", markup.replace("<br/>", "\n")))


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
