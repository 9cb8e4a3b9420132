"""The interface every label format implements, the plan it makes for a split folder, and the
class-table rules formats share.

A format is one object registered by name (see registry). Label indexing asks it how a split
folder is recognised, which files it owns, how one file is read, what makes a stored file stale,
how the split's `classes` rows are kept, which images belong to the split and what a watcher
follows. It never branches on a format's name.
"""

from __future__ import annotations

import os
import stat
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import sqlite_utils

from .images import ImageIndex
from .model import Parsed
from .rows import Convention

Stat = tuple[int, int]  # (size, mtime_ns)


class LabelError(ValueError):
    """A label option that cannot be honoured for a folder; the message says what to do."""


@dataclass(frozen=True)
class LabelPlan:
    """How one split folder's labels are read: the format's name and where its files are."""

    split: str
    root: Path  # the scanned folder
    format: str  # a registered format's name, stored with the labels
    label_dir: Path | None = None  # folder of label files (YOLO/custom text files, VOC Annotations)
    image_dir: Path | None = None  # folder whose layout label_dir mirrors (YOLO/custom)
    files: tuple[Path, ...] = ()  # label files named exactly (COCO JSON files)
    names_file: Path | None = None  # data.yaml / dataset.yaml / classes.txt
    members: frozenset[str] | None = None  # VOC ImageSets/Main/<split>.txt ids (image stems)
    reason: str = ""

    @property
    def coco_files(self) -> tuple[Path, ...]:
        """The files of a COCO plan (the plan's exact files)."""
        return self.files


@dataclass(frozen=True)
class Reading:
    """What a label file is read against: the split's images, the plan's class names, the row convention."""

    images: ImageIndex
    names: dict[int, str] | None = None
    convention: Convention | None = None


@dataclass(frozen=True)
class Watched:
    """What a watcher follows for one plan besides the split folder: (folder, recursive) pairs whose
    files are label files, and exact label files."""

    folders: tuple[tuple[Path, bool], ...] = ()
    files: tuple[Path, ...] = ()


class ClassTable:
    """How a format keeps the split's rows of `classes`. Formats that keep them the same way share
    one instance; it runs once per split, with the plans of those formats. This one keeps nothing."""

    def before_read(self, db: sqlite_utils.Database, split: str) -> None:
        """Called before label files of the split are (re-)read."""

    def refresh(self, db: sqlite_utils.Database, split: str, plans: Sequence[LabelPlan]) -> None:
        """Called inside a transaction after the split's files were read, when anything changed."""


class ClassesOfLabels(ClassTable):
    """Classes named by the labels themselves (ids given across the index when the labels are
    written): rows of the split whose id no label uses any more are dropped."""

    def refresh(self, db: sqlite_utils.Database, split: str, plans: Sequence[LabelPlan]) -> None:
        db.conn.execute(
            "DELETE FROM classes WHERE split = ? AND class_id NOT IN "
            "(SELECT DISTINCT class_id FROM labels WHERE split = ? AND class_id IS NOT NULL)",
            [split, split],
        )


NO_CLASS_TABLE = ClassTable()
CLASSES_OF_LABELS = ClassesOfLabels()


class LabelFormat(ABC):
    """One label format. Subclasses set `name` and `read`, and override the hooks their layout needs;
    the defaults suit a format whose plan names its files exactly (`LabelPlan.files`)."""

    name: ClassVar[str]
    detect_order: ClassVar[float | None] = None  # rank among the detected formats; None: only by --labels
    missing: ClassVar[str] = "no label files found"  # why `--labels NAME` cannot be used for a folder
    takes_label_file: ClassVar[bool] = False  # the file named by --coco FILE is one of this format's
    asks_row_convention: ClassVar[bool] = False  # needs --label-first/--box-first and --bbox-format
    reads_together: ClassVar[bool] = False  # one changed file re-reads every file of the plan
    expects_labels: ClassVar[bool] = True  # False: its images are not reported as lacking a label
    class_table: ClassVar[ClassTable] = NO_CLASS_TABLE

    # ---------------------------------------------------------------- plans

    def find(self, split: str, root: Path) -> LabelPlan | None:
        """The plan of `root` in this format when its files are there; None otherwise."""
        return None

    def detect(self, split: str, root: Path) -> LabelPlan | None:
        """The plan when `root` looks like this format (tried in `detect_order`)."""
        return self.find(split, root)

    def forced_plan(self, split: str, root: Path, file: Path | None = None) -> LabelPlan:
        """The plan for `--labels NAME` (`file`: a label file named on the command line, for formats
        that take one). Raises LabelError saying what is missing."""
        plan = self.find(split, root)
        if plan is None:
            raise LabelError(f"--labels {self.name}: {self.missing} for split {split!r} ({root})")
        return plan

    def under_row_options(self, plan: LabelPlan, label_first: bool | None, bbox_format: str | None) -> LabelPlan:
        """The plan to use when the user gave row options without naming this format."""
        return plan

    def with_names(self, plan: LabelPlan, names: Path) -> LabelPlan:
        """The plan reading its class names from `names` (--names, or a dataset file's names):
        formats whose labels carry no names use it; the others keep theirs."""
        return plan

    def with_members(self, plan: LabelPlan, stems: frozenset[str]) -> LabelPlan:
        """The plan of a folder whose split holds only some of its images (a dataset file's .txt
        list; `stems`: theirs): formats with a label file per image read only those images' files."""
        return plan

    def through_link(self, plan: LabelPlan, named: Path) -> LabelPlan:
        """The plan of a folder the user named through a symlink, `named` (absolute, not resolved;
        `plan.root` is resolved): what lies beside the link, such as a names file, counts too."""
        return plan

    def image_filter(self, plan: LabelPlan) -> Callable[[str], bool] | None:
        """Which image paths under the folder belong to the split; None: all of them."""
        return None

    # ---------------------------------------------------------------- files

    def files(self, plan: LabelPlan) -> list[Path]:
        """The files (or folders) whose content defines the plan's labels."""
        return list(plan.files)

    def stat_files(self, plan: LabelPlan) -> dict[str, Stat]:
        """path -> (size, mtime_ns) of the plan's label files as the file system has them."""
        return stat_paths(self.files(plan))

    def stat_with_images(self, plan: LabelPlan, images: ImageIndex) -> dict[str, Stat]:
        """The stats compared with the stored ones to find files to read."""
        return self.stat_files(plan)

    def stat_unchanged(self, plan: LabelPlan, stored: Iterable[str]) -> Mapping[str, tuple[int | None, int]]:
        """`stat_with_images` for a split none of whose images changed, without loading the images;
        a size of None is not compared. `stored`: the split's stored label file paths."""
        return self.stat_files(plan)

    def watched(self, plan: LabelPlan) -> Watched:
        return Watched(files=tuple(self.files(plan)))

    # ---------------------------------------------------------------- reading

    @abstractmethod
    def read(self, plan: LabelPlan, path: Path, reading: Reading) -> Parsed:
        """Labels and problems of one label file; never raises for bad content."""

    def links_changed(
        self, plan: LabelPlan, path: str, linked: set[str], images: ImageIndex, touched: set[str]
    ) -> bool:
        """Is a stored file stale because of its images, beyond those it linked having changed or
        gone (checked for every format)? `touched`: the split's images new, changed or removed."""
        return False

    def sample_rows(self, plan: LabelPlan, limit: int) -> list[tuple[str, str]]:
        """(file, row) pairs shown with the row-convention questions."""
        return []


def stat_paths(paths: Iterable[Path | str]) -> dict[str, Stat]:
    """path -> (size, mtime_ns) of the paths that exist."""
    out: dict[str, Stat] = {}
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        out[str(path)] = (st.st_size, st.st_mtime_ns)
    return out


def read_text(path: Path) -> tuple[str | None, str | None]:
    """(text, None) or (None, error message), UTF-8 with or without the byte-order mark some
    Windows editors write first. Only a regular file is read: a FIFO, device or socket named like
    a label file is opened without blocking and refused."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        return None, f"cannot read: {exc.strerror or exc}"
    with os.fdopen(fd, "rb") as file:
        try:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                return None, "not a regular file (a FIFO, device or socket): not read"
            return file.read().decode("utf-8-sig", errors="replace"), None
        except OSError as exc:
            return None, f"cannot read: {exc.strerror or exc}"
