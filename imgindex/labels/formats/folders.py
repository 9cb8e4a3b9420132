"""Classification by class folders: every image below <split>/<class>/ has that class."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from ...walk import stored_text
from .base import CLASSES_OF_LABELS, LabelFormat, LabelPlan, Reading, Stat, Watched
from .images import ImageIndex, is_image
from .model import Label, Parsed

# Folder names that are parts of a dataset layout, never classes.
LAYOUT_NAMES = frozenset(
    {
        "images",
        "labels",
        "annotations",
        "jpegimages",
        "imagesets",
        "train",
        "val",
        "valid",
        "validation",
        "test",
        "testing",
        "training",
    }
)


def class_folders(root: Path) -> list[Path]:
    """Subfolders of `root` that hold image files directly."""
    found = []
    for entry in sorted(_entries(root), key=lambda e: e.name):
        if _is(entry, "dir") and not entry.name.startswith(".") and _holds_images(Path(entry.path)):
            found.append(Path(entry.path))
    return found


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    """The folder's entries; none when it cannot be listed."""
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except OSError:
        return []


def _is(entry: os.DirEntry[str], kind: str) -> bool:
    """entry.is_dir() / is_file(), False for a broken link or a link loop instead of an error."""
    try:
        return entry.is_dir() if kind == "dir" else entry.is_file()
    except OSError:
        return False


def _holds_images(folder: Path) -> bool:
    try:
        with os.scandir(folder) as entries:
            return any(is_image(e.name) for e in entries)
    except OSError:
        return False


def _holds_images_directly(root: Path) -> bool:
    return any(is_image(e.name) and _is(e, "file") for e in _entries(root))


def folder_labels(folder: Path, images: ImageIndex) -> Parsed:
    """Every image below a class folder gets the folder's name as its class."""
    paths = images.under(folder)
    return Parsed(labels=[Label(p, None, stored_text(folder.name)) for p in paths], images=paths)


class FoldersFormat(LabelFormat):
    """Class folders are the 'label files': a folder's size is its image count, its content the
    split's images below it (so the images are its links)."""

    name = "folders"
    detect_order = 50
    missing = "no class subfolders holding images found in the folder"
    class_table = CLASSES_OF_LABELS

    def find(self, split: str, root: Path) -> LabelPlan | None:
        if not root.is_dir() or _holds_images_directly(root):
            return None
        folders = class_folders(root)
        if len(folders) < 2 or any(f.name.lower() in LAYOUT_NAMES for f in folders):
            return None  # one folder is no classification; train/valid/test or images/labels are a layout
        return LabelPlan(split, root, self.name, reason=f"{len(folders)} class subfolders")

    def files(self, plan: LabelPlan) -> list[Path]:
        return class_folders(plan.root)

    def stat_with_images(self, plan: LabelPlan, images: ImageIndex) -> dict[str, Stat]:
        return {path: (len(images.under(path)), mtime) for path, (_, mtime) in self.stat_files(plan).items()}

    def stat_unchanged(self, plan: LabelPlan, stored: Iterable[str]) -> Mapping[str, tuple[int | None, int]]:
        """With no image of the split changed the class folders are the stored ones (a folder that
        gained or lost its images changed images): they are stat-ed, not listed, sizes not compared."""
        found: dict[str, tuple[int | None, int]] = {}
        root = str(plan.root)
        for path in stored:
            if os.path.dirname(path) == root:
                try:
                    found[path] = (None, os.stat(path).st_mtime_ns)
                except OSError:
                    continue  # gone: the stored row is then not seen, and the split is read in full
        return found

    def watched(self, plan: LabelPlan) -> Watched:
        return Watched()  # the class folders are inside the watched split folder

    def read(self, plan: LabelPlan, path: Path, reading: Reading) -> Parsed:
        return folder_labels(path, reading.images)

    def links_changed(
        self, plan: LabelPlan, path: str, linked: set[str], images: ImageIndex, touched: set[str]
    ) -> bool:
        """An image appeared, changed or went below the class folder."""
        prefix = path.rstrip(os.sep) + os.sep
        return any(t.startswith(prefix) for t in touched)


FORMAT = FoldersFormat()
