"""Read one label file of a plan against the split's images: the pure core of label indexing."""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .coco import parse_coco_text
from .detect import LabelPlan
from .model import IMAGE_SIZE_UNKNOWN, LABEL_WITHOUT_IMAGE, Label, Parsed, Problem, Size
from .rows import YOLO, Convention, parse_rows
from .voc import parse_voc_text


@dataclass
class ImageIndex:
    """The split's images (absolute path -> (width, height), None when unreadable), with lookups.

    The lookup tables are built on first use: a re-scan with nothing to read never pays for them.
    """

    sizes: dict[str, Size | None]

    @cached_property
    def _sorted(self) -> list[str]:
        return sorted(self.sizes)

    @cached_property
    def _by_base(self) -> dict[str, str]:
        return _first_by(self._sorted, lambda p: os.path.splitext(p)[0])

    @cached_property
    def _by_name(self) -> dict[str, str]:
        return _first_by(self._sorted, os.path.basename)

    @cached_property
    def _by_stem(self) -> dict[str, str]:
        return _first_by(self._sorted, lambda p: os.path.splitext(os.path.basename(p))[0])

    def by_base(self, base: str) -> str | None:
        """The image whose path without extension is `base`."""
        return self._by_base.get(base)

    def by_name(self, name: str) -> str | None:
        return self._by_name.get(os.path.basename(name))

    def by_stem(self, stem: str) -> str | None:
        return self._by_stem.get(stem)

    def under(self, folder: str | Path) -> list[str]:
        """Images below `folder`, sorted (a range of the sorted paths)."""
        prefix = str(folder).rstrip(os.sep) + os.sep
        start = bisect.bisect_left(self._sorted, prefix)
        end = bisect.bisect_left(self._sorted, prefix[:-1] + chr(ord(os.sep) + 1))
        return self._sorted[start:end]


def _first_by(paths: list[str], key: Callable[[str], str]) -> dict[str, str]:
    """key -> the first path (in sorted order) with that key."""
    out: dict[str, str] = {}
    for path in paths:
        out.setdefault(key(path), path)
    return out


def read_text(path: Path) -> tuple[str | None, str | None]:
    """(text, None) or (None, error message)."""
    try:
        return path.read_text(encoding="utf-8", errors="replace"), None
    except OSError as exc:
        return None, f"cannot read: {exc.strerror or exc}"


def image_for_text_label(plan: LabelPlan, path: Path | str, images: ImageIndex) -> str | None:
    """The image a YOLO/custom label file annotates: same relative folder and stem under image_dir."""
    assert plan.label_dir is not None and plan.image_dir is not None
    text, label_dir = str(path), str(plan.label_dir)
    rel = text[len(label_dir) + 1 :] if text.startswith(label_dir + os.sep) else os.path.relpath(text, label_dir)
    return images.by_base(os.path.join(str(plan.image_dir), os.path.splitext(rel)[0]))


def read_label_file(
    plan: LabelPlan, path: Path, images: ImageIndex, names: dict[int, str] | None, convention: Convention | None = None
) -> Parsed:
    """Labels and problems of one label file of `plan`; never raises for bad content."""
    if plan.format == "folders":
        return folder_labels(path, images)
    if plan.names_file is not None and path == plan.names_file:
        return Parsed()
    text, error = read_text(path)
    if text is None:
        return Parsed(error=error)
    if plan.format == "coco":
        return parse_coco_text(text, str(path), lambda name: _coco_image(plan, path, name, images))
    if plan.format == "voc":
        return parse_voc_text(text, str(path), lambda name, xml: _voc_image(name, xml, images))
    return _text_labels(plan, path, text, images, names, convention or YOLO)


def _text_labels(
    plan: LabelPlan, path: Path, text: str, images: ImageIndex, names: dict[int, str] | None, convention: Convention
) -> Parsed:
    image = image_for_text_label(plan, path, images)
    size = images.sizes.get(image) if image else None
    parsed = parse_rows(text, str(path), image, size, names, convention, polygons=plan.format == "yolo")
    if image is None:
        parsed.problems.insert(
            0, Problem(LABEL_WITHOUT_IMAGE, str(path), None, f"no image named {path.stem}.* in {plan.image_dir}")
        )
    elif size is None and parsed.labels:
        parsed.problems.insert(
            0, Problem(IMAGE_SIZE_UNKNOWN, str(path), None, f"{image} could not be read: pixel boxes left empty")
        )
    return parsed


def _coco_image(plan: LabelPlan, json_path: Path, name: str, images: ImageIndex) -> str | None:
    for base in (plan.root, json_path.parent):
        candidate = os.path.normpath(base / name)
        if candidate in images.sizes:
            return candidate
    return images.by_name(name)


def _voc_image(name: str | None, xml_path: str, images: ImageIndex) -> tuple[str | None, Size | None]:
    found = images.by_name(name) if name else None
    found = found or images.by_stem(Path(xml_path).stem)
    return found, (images.sizes.get(found) if found else None)


def folder_labels(folder: Path, images: ImageIndex) -> Parsed:
    """Classification: every image below a class folder gets the folder's name as its class."""
    paths = images.under(folder)
    return Parsed(labels=[Label(p, None, folder.name) for p in paths], images=paths)
