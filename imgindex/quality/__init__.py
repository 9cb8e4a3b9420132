"""Image quality: flags judged from the measures the scan stored, per split (see flags.py).

Writers call ``refresh`` after the near-duplicate verdict: the splits marked in ``quality_stale``
(by triggers on ``images``) are judged again from the stored measures, without opening an image;
new thresholds mark every split. Readers call ``load``: the thresholds applied, and the flags."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from .. import store
from ..labels.settings import get_setting, set_setting
from .flags import BY_NAME, COLUMNS, DEFAULTS, FLAGS, Measures, Thresholds, judge, outlier_scores, rule_lines

__all__ = [
    "BY_NAME",
    "DEFAULTS",
    "FLAGS",
    "Quality",
    "ThresholdError",
    "applied",
    "load",
    "parse_thresholds",
    "refresh",
    "rule_lines",
    "thresholds",
]

SETTING = "quality.thresholds"  # the thresholds set (those that differ from the defaults), JSON
RULE = "quality.rule"  # what the stored flags applied: [{flag, threshold, rule}], JSON
VERSION = "quality.version"  # JUDGE_VERSION of the code that judged the stored flags
JUDGE_VERSION = 3  # raise when a flag is judged otherwise: every split is judged again


class ThresholdError(ValueError):
    """A threshold that names no flag or is not a number."""


def thresholds(db: sqlite_utils.Database) -> dict[str, float]:
    """The thresholds the next refresh applies: the defaults, overridden by those set."""
    stored = get_setting(db, SETTING)
    return {**DEFAULTS, **(json.loads(stored) if stored else {})}


def applied(db: sqlite_utils.Database) -> dict[str, float]:
    """The thresholds the stored flags were judged with (the defaults before any refresh)."""
    stored = get_setting(db, RULE)
    if not stored:
        return dict(DEFAULTS)
    return {**DEFAULTS, **{entry["flag"]: entry["threshold"] for entry in json.loads(stored)}}


def parse_thresholds(pairs: Mapping[str, Any]) -> dict[str, float]:
    """Thresholds given by name; the value "default" restores a flag's default."""
    parsed: dict[str, float] = {}
    for name, value in pairs.items():
        if name not in BY_NAME:
            raise ThresholdError(f"no quality flag is called {name!r}; the flags are: {', '.join(BY_NAME)}")
        try:
            parsed[name] = BY_NAME[name].default if value == "default" else float(value)
        except (TypeError, ValueError):
            raise ThresholdError(f"the threshold of {name} must be a number (or 'default'), not {value!r}") from None
    return parsed


def refresh(db: sqlite_utils.Database, changes: Mapping[str, Any] | None = None) -> int:
    """Judge the stale splits again (every split when ``changes`` moves a threshold), in one
    write transaction; store the thresholds applied. Returns how many splits were judged."""
    new = parse_thresholds(changes or {})
    with store.write_transaction(db):
        wanted = {**thresholds(db), **new}
        if wanted != applied(db) or get_setting(db, RULE) is None or get_setting(db, VERSION) != str(JUDGE_VERSION):
            _save(db, wanted)
            db.execute("INSERT OR IGNORE INTO quality_stale (split) SELECT DISTINCT split FROM images")
        splits = [row[0] for row in db.execute("SELECT split FROM quality_stale ORDER BY split")]
        for split in splits:
            _judge_split(db, split, wanted)
        db.execute("DELETE FROM quality_stale")
    return len(splits)


def _save(db: sqlite_utils.Database, wanted: Mapping[str, float]) -> None:
    changed = {name: value for name, value in wanted.items() if value != DEFAULTS[name]}
    rule = [
        {"flag": flag.name, "threshold": wanted[flag.name], "rule": line}
        for flag, line in zip(FLAGS, rule_lines(wanted))
    ]
    for key, value in ((SETTING, changed), (RULE, rule), (VERSION, JUDGE_VERSION)):
        set_setting(db, key, json.dumps(value, sort_keys=True))


def _measures(db: sqlite_utils.Database, split: str) -> Measures:
    """The measures of a split's readable images that carry them (this extractor's rows)."""
    columns = ", ".join(COLUMNS)
    rows = db.execute(
        f"SELECT id, {columns} FROM images WHERE split = ? AND error IS NULL AND entropy IS NOT NULL ORDER BY id",
        [split],
    ).fetchall()
    return Measures.from_rows(rows)


def _judge_split(db: sqlite_utils.Database, split: str, applied: Thresholds) -> None:
    """Judge one split and write what changed: few rows when few images did."""
    m = _measures(db, split)
    flags = {(image_id, flag): (value,) for image_id, flag, value in judge(m, applied)}
    scores, measures = outlier_scores(m)
    outliers = {
        (int(i),): (None if math.isnan(s) else round(float(s), 3), w) for i, s, w in zip(m.ids, scores, measures)
    }
    in_split = "JOIN images i ON i.id = t.image_id WHERE i.split = ?"
    _sync(db, "quality_flags", ("image_id", "flag"), ("value",), in_split, split, flags)
    _sync(db, "quality_outliers", ("image_id",), ("score", "measure"), in_split, split, outliers)


Key = tuple[Any, ...]


def _sync(
    db: sqlite_utils.Database,
    table: str,
    keys: tuple[str, ...],
    values: tuple[str, ...],
    where: str,
    split: str,
    wanted: dict[Key, Key],
) -> None:
    """Make a table's rows of one split equal ``wanted`` (key columns -> value columns)."""
    columns = ", ".join(f"t.{c}" for c in keys + values)
    stored = {r[: len(keys)]: r[len(keys) :] for r in db.execute(f"SELECT {columns} FROM {table} t {where}", [split])}
    gone = [key for key in stored if key not in wanted]
    changed = [key + row for key, row in wanted.items() if stored.get(key) != row]
    match = " AND ".join(f"{c} = ?" for c in keys)
    db.conn.executemany(f"DELETE FROM {table} WHERE {match}", gone)
    marks = ", ".join("?" * (len(keys) + len(values)))
    db.conn.executemany(f"INSERT OR REPLACE INTO {table} ({', '.join(keys + values)}) VALUES ({marks})", changed)


@dataclass
class Quality:
    """The stored flags as every output shows them: the thresholds, the rule's sentences, counts
    per split and flag, and the flagged images (split, path, flags with their values)."""

    thresholds: dict[str, float]
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> flag -> images
    images: dict[str, int] = field(default_factory=dict)  # split -> readable images judged
    flagged: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rule(self) -> list[str]:
        return rule_lines(self.thresholds)

    def as_json(self, flags: Sequence[str] = ()) -> dict[str, Any]:
        """The rule, the counts and the flagged images (those carrying one of ``flags``, if given)."""
        images = [e for e in self.flagged if not flags or any(f in e["flags"] for f in flags)]
        return {
            "rule": {"thresholds": self.thresholds, "flags": self.rule},
            "splits": {
                split: {"images": self.images[split], "flags": self.counts.get(split, {})} for split in self.images
            },
            "images": images,
        }


def load(db: sqlite_utils.Database) -> Quality:
    """The stored flags (call inside one read snapshot)."""
    quality = Quality(applied(db))
    for split, n in db.execute(
        "SELECT split, COUNT(*) FROM images WHERE error IS NULL AND entropy IS NOT NULL GROUP BY split ORDER BY split"
    ):
        quality.images[split] = n
        quality.counts[split] = {flag.name: 0 for flag in FLAGS}
    by_image: dict[int, dict[str, Any]] = {}
    for image_id, split, path, flag, value in db.execute(
        "SELECT i.id, i.split, i.path, f.flag, f.value FROM quality_flags f JOIN images i ON i.id = f.image_id "
        "ORDER BY i.split, i.path"
    ):
        counts = quality.counts.setdefault(split, {})
        counts[flag] = counts.get(flag, 0) + 1
        entry = by_image.setdefault(image_id, {"split": split, "path": path, "flags": {}})
        entry["flags"][flag] = value
    order = {flag.name: n for n, flag in enumerate(FLAGS)}
    for entry in by_image.values():
        entry["flags"] = dict(sorted(entry["flags"].items(), key=lambda item: order.get(item[0], len(order))))
    quality.flagged = list(by_image.values())
    return quality
