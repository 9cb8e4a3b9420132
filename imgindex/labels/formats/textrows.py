"""What YOLO and custom row formats share: a labels/ folder of .txt/.csv files mirroring the images
folder, one file per image, class names from a names file, and the split's class table from it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import sqlite_utils

from ...walk import stored_text
from .base import ClassTable, LabelFormat, LabelPlan, Reading, Stat, Watched, read_text, stat_paths
from .images import ImageIndex
from .model import IMAGE_SIZE_UNKNOWN, LABEL_WITHOUT_IMAGE, UNNAMED_CLASS, Parsed, Problem
from .names import TEXT_NAMES, find_names_file, load_names
from .rows import YOLO, numeric_rows, parse_rows


def yolo_dirs(root: Path) -> tuple[Path, Path] | None:
    """(image folder, label folder): <root>/images + <root>/labels (Roboflow), <root>/labels, or the
    folder with its last 'images' part replaced by 'labels' (Ultralytics)."""
    if (root / "labels").is_dir():
        return (root / "images" if (root / "images").is_dir() else root), root / "labels"
    parts = root.parts
    for i in range(len(parts) - 1, -1, -1):
        if parts[i].lower() == "images":
            swapped = Path(*parts[:i], "labels" if parts[i] == "images" else "Labels", *parts[i + 1 :])
            return (root, swapped) if swapped.is_dir() else None
    return None


def list_text_files(label_dir: Path) -> list[Path]:
    """Every .txt/.csv label file below `label_dir`, sorted; names files (classes.txt) left out."""
    return [Path(p) for p in text_file_stats(label_dir)]


def text_file_stats(label_dir: Path) -> dict[str, Stat]:
    """path -> (size, mtime_ns) of every .txt/.csv label file below `label_dir`, in sorted order."""
    out: dict[str, Stat] = {}
    stack = [str(label_dir)]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        subfolders = []
        for entry in entries:
            try:
                if entry.is_dir():
                    subfolders.append(entry.path)
                elif entry.name.lower().endswith((".txt", ".csv")) and entry.name not in TEXT_NAMES:
                    st = entry.stat()
                    out[entry.path] = (st.st_size, st.st_mtime_ns)
            except OSError:
                continue  # vanished, or a broken link
        stack.extend(reversed(subfolders))
    return out


def read_or_empty(path: Path) -> str:
    text, _ = read_text(path)
    return text or ""


def image_for_text_label(plan: LabelPlan, path: Path | str, images: ImageIndex) -> str | None:
    """The image a text label file annotates: same relative folder and stem under image_dir."""
    assert plan.label_dir is not None and plan.image_dir is not None
    text, label_dir = str(path), str(plan.label_dir)
    rel = text[len(label_dir) + 1 :] if text.startswith(label_dir + os.sep) else os.path.relpath(text, label_dir)
    return images.by_base(stored_text(os.path.join(str(plan.image_dir), os.path.splitext(rel)[0])))


def _member(plan: LabelPlan, path: str) -> bool:
    """Whether a label file belongs to the split: all do, unless the split lists its images."""
    return plan.members is None or os.path.splitext(os.path.basename(path))[0] in plan.members


def is_names_file(plan: LabelPlan, path: Path | str) -> bool:
    return plan.names_file is not None and str(path) == str(plan.names_file)


class NamesFileClasses(ClassTable):
    """The split's classes are those of its names files; a plan without one is a split-level problem."""

    def refresh(self, db: sqlite_utils.Database, split: str, plans: Sequence[LabelPlan]) -> None:
        names: dict[int, str] = {}
        for plan in plans:
            loaded = load_names(plan.names_file) if plan.names_file else None
            if loaded is None:
                _no_names_problem(db, split, plan)
            names.update(loaded or {})
        db.conn.execute("DELETE FROM classes WHERE split = ?", [split])
        db.conn.executemany(
            "INSERT INTO classes (split, class_id, name) VALUES (?, ?, ?)",
            [(split, k, v) for k, v in sorted(names.items())],
        )


def _no_names_problem(db: sqlite_utils.Database, split: str, plan: LabelPlan) -> None:
    db.conn.execute(
        "INSERT INTO label_problems (split, path, kind, detail) VALUES (?, ?, ?, ?)",
        [
            split,
            str(plan.label_dir),
            UNNAMED_CLASS,
            "no data.yaml, dataset.yaml or classes.txt with class names found beside the "
            "split or above it: class names are empty",
        ],
    )


NAMES_FILE_CLASSES = NamesFileClasses()


class TextRowsFormat(LabelFormat):
    """A labels/ folder of text files, one per image, one box per row."""

    polygons: ClassVar[bool] = True  # rows of more than 4 coordinates are polygons (else malformed)
    missing = "no labels/ folder found beside images/ (or inside the folder)"
    class_table = NAMES_FILE_CLASSES

    def find(self, split: str, root: Path) -> LabelPlan | None:
        dirs = yolo_dirs(root)
        if dirs is None:
            return None
        image_dir, label_dir = dirs
        names = find_names_file([root, label_dir])
        why = f"label files in {label_dir}"
        return LabelPlan(split, root, self.name, label_dir=label_dir, image_dir=image_dir, names_file=names, reason=why)

    def with_names(self, plan: LabelPlan, names: Path) -> LabelPlan:
        return replace(plan, names_file=names)

    def with_members(self, plan: LabelPlan, stems: frozenset[str]) -> LabelPlan:
        return replace(plan, members=stems)

    def through_link(self, plan: LabelPlan, named: Path) -> LabelPlan:
        """A names file in the folder or up to 4 folders above the link comes before those above
        the folder the link leads to."""
        assert plan.label_dir is not None
        return replace(plan, names_file=find_names_file([named, plan.root, plan.label_dir]))

    def files(self, plan: LabelPlan) -> list[Path]:
        assert plan.label_dir is not None
        listed = [p for p in list_text_files(plan.label_dir) if _member(plan, str(p))]
        return listed + ([plan.names_file] if plan.names_file else [])

    def stat_files(self, plan: LabelPlan) -> dict[str, Stat]:
        assert plan.label_dir is not None
        files = {p: stat for p, stat in text_file_stats(plan.label_dir).items() if _member(plan, p)}
        files.update(stat_paths([plan.names_file] if plan.names_file else []))
        return files

    def watched(self, plan: LabelPlan) -> Watched:
        assert plan.label_dir is not None
        return Watched(folders=((plan.label_dir, True),), files=(plan.names_file,) if plan.names_file else ())

    def read(self, plan: LabelPlan, path: Path, reading: Reading) -> Parsed:
        if is_names_file(plan, path):
            return Parsed()  # read through the class table, not as labels
        text, error = read_text(path)
        if text is None:
            return Parsed(error=error)
        return self._labels(plan, path, text, reading)

    def _labels(self, plan: LabelPlan, path: Path, text: str, reading: Reading) -> Parsed:
        """The file's rows against the image it annotates (problems when there is none or it is unreadable)."""
        images = reading.images
        image = image_for_text_label(plan, path, images)
        size = images.sizes.get(image) if image else None
        convention = (reading.convention if self.asks_row_convention else None) or YOLO
        parsed = parse_rows(text, str(path), image, size, reading.names, convention, polygons=self.polygons)
        if image is None:
            detail = f"no image named {path.stem}.* in {plan.image_dir}"
            parsed.problems.insert(0, Problem(LABEL_WITHOUT_IMAGE, str(path), None, detail))
        elif size is None and parsed.labels:
            detail = f"{image} could not be read: pixel boxes left empty"
            parsed.problems.insert(0, Problem(IMAGE_SIZE_UNKNOWN, str(path), None, detail))
        return parsed

    def links_changed(
        self, plan: LabelPlan, path: str, linked: set[str], images: ImageIndex, touched: set[str]
    ) -> bool:
        """The image the file should annotate is not the one it was linked to (appeared, went)."""
        if is_names_file(plan, path):
            return False
        expected = image_for_text_label(plan, path, images)
        return {expected} - {None} != linked

    def sample_rows(self, plan: LabelPlan, limit: int) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for path in self.files(plan):
            if is_names_file(plan, path):
                continue
            text = read_or_empty(path) if path.is_file() else ""
            out += [(str(path), " ".join(f"{v:g}" for v in row)) for row in numeric_rows(text, limit - len(out))]
            if len(out) >= limit:
                break
        return out
