"""What a feature receives (Context) and returns (FeatureResult)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import sqlite_utils
from matplotlib.figure import Figure

from ...quality import Quality
from ...quality import load as load_quality
from ...quality.flags import Measures
from .. import db
from ..plots import split_colours


@dataclass
class Thumbnail:
    """A small picture of an indexed image in the PDF, with its caption."""

    jpeg: bytes  # the picture, or a placeholder saying why there is none
    caption: str


@dataclass
class Gallery:
    """A heading and a row of thumbnails under it."""

    heading: str  # paragraph markup, as a description
    thumbnails: list[Thumbnail]


@dataclass
class FeatureResult:
    name: str
    title: str
    description: str
    stats: Any
    notices: list[str] = field(default_factory=list)
    figure: Figure | None = None
    table: list[list[str]] | None = None  # rendered as a table in the PDF (header row first)
    table_widths: list[float] | None = None  # the table's column widths, as fractions of the page width
    galleries: list[Gallery] = field(default_factory=list)  # rows of thumbnails, after the table


class Context:
    """Lazily loaded, shared view of the database for all features of one report."""

    def __init__(self, database: sqlite_utils.Database, db_path: Path, top_k: int = 30) -> None:
        self.db = database
        self.conn: sqlite3.Connection = database.conn
        self.db_path = db_path
        self.top_k = top_k
        self.splits: list[str] = db.all_splits(self.conn)
        self.colours: dict[str, str] = split_colours(self.splits)

    @cached_property
    def images(self) -> db.ImageTable:
        return db.load_images(self.conn, self.splits)

    @cached_property
    def histograms(self) -> dict[str, np.ndarray]:
        return db.load_histograms(self.conn, self.splits)

    @cached_property
    def labels(self) -> db.LabelTable | None:
        return db.load_labels(self.conn, self.splits)

    @cached_property
    def boxes(self) -> db.LabelTable | None:
        """Detection rows only (rows with a box)."""
        return _subset(self.labels, lambda t: np.isfinite(t.box).all(axis=1))

    @cached_property
    def classifications(self) -> db.LabelTable | None:
        """Classification rows only (rows without a box)."""
        return _subset(self.labels, lambda t: ~np.isfinite(t.box).any(axis=1))

    @cached_property
    def files(self) -> dict[str, dict[str, Any]]:
        return db.image_files(self.conn)

    @cached_property
    def problems(self) -> dict[str, dict[str, int]]:
        return db.label_problem_counts(self.conn)

    @cached_property
    def problem_rows(self) -> list[db.LabelProblem]:
        return db.label_problems(self.conn)

    @cached_property
    def roots(self) -> dict[str, list[str]]:
        return db.split_roots(self.conn)

    @cached_property
    def quality(self) -> Quality:
        """The stored quality flags, as `imgindex quality` shows them."""
        return load_quality(self.db)

    @cached_property
    def quality_measures(self) -> dict[str, Measures]:
        """Per split, the measures its quality flags were judged from (splits without any left out)."""
        found = {split: db.quality_measures(self.conn, split) for split in self.splits}
        return {split: m for split, m in found.items() if len(m)}

    @cached_property
    def quality_flagged(self) -> dict[str, list[db.FlaggedImage]]:
        return db.quality_flagged(self.conn)

    def image_count(self, split: str) -> int:
        """Readable images of a split."""
        return int(self.images.mask(split).sum())


def _subset(table: db.LabelTable | None, select: Callable[[db.LabelTable], np.ndarray]) -> db.LabelTable | None:
    if table is None or len(table) == 0:
        return None
    keep = select(table)
    if not keep.any():
        return None
    return db.LabelTable(
        split=table.split[keep],
        image=table.image[keep],
        cls=table.cls[keep],
        box=table.box[keep],
        area=table.area[keep],
        image_size=table.image_size[keep],
        class_names=table.class_names,
        class_ids=table.class_ids,
    )


FeatureFunc = Callable[[Context, Mapping[str, Any]], "FeatureResult | None"]
