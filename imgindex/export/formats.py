"""The dataset definition an export writes, one exporter per format (EXPORTERS). None touches the
original files: lists name them, and where a format needs its files in one place the export
links to them.

- yolo: data.yaml (class names from the index) and a .txt list of image paths per split; the
  label files stay where they are (beside images/ as labels/).
- coco: per split, a folder of links to the kept images (hard links where the file system allows,
  else symbolic) and an _annotations.coco.json holding only their images and annotations.
- voc: ImageSets/Main/<split>.txt of the kept images' ids, with links to the dataset's
  Annotations/ and JPEGImages/.
- list: only the removal list (removed.csv, removed.json), which every format writes too.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils
import yaml

from .policy import Decision, Image

YOLO_KEYS = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


class ExportError(ValueError):
    """An export this dataset cannot take; the message says why and what to do."""


@dataclass(frozen=True)
class Target:
    db: sqlite_utils.Database
    decision: Decision
    out: Path  # the folder being written (renamed to its final name once complete)
    final: Path  # where it will be


@dataclass(frozen=True)
class Exporter:
    name: str
    title: str
    write: Callable[[Target], None]
    cannot_name: Callable[[Image], str | None] = lambda image: None  # why its files cannot hold an image


def not_utf8(image: Image) -> str | None:
    """Why a COCO json cannot name an image, if it cannot: JSON text is UTF-8."""
    return "its name is not UTF-8, which a COCO json cannot hold; rename the file" if image.escaped else None


def unlisted(image: Image) -> str | None:
    """Why a line of a .txt image list cannot name an image, if it cannot: a newline in its name
    would split it in two; a name that is not UTF-8 is stored as text with \\xNN escapes, which
    names another file."""
    if "\n" in image.path or "\r" in image.path:
        return "its name holds a line break, which a .txt image list cannot hold; rename the file"
    if image.escaped:
        return "its name is not UTF-8, which a .txt image list cannot hold; rename the file"
    return None


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def removal_list(target: Target) -> None:
    rows = [
        {"split": r.image.split, "path": r.image.path, "rel_path": r.image.rel_path, "reason": r.reason}
        for r in sorted(target.decision.removed, key=lambda r: (r.image.split, r.image.path))
    ]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["split", "path", "rel_path", "reason"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(target.out / "removed.csv", buffer.getvalue())
    write_text(target.out / "removed.json", json.dumps(rows, indent=1, ensure_ascii=False) + "\n")


def class_names(db: sqlite_utils.Database) -> dict[int, str]:
    rows = db.execute("SELECT class_id, name FROM classes WHERE class_id IS NOT NULL ORDER BY split DESC, class_id")
    return {int(k): str(v) for k, v in rows.fetchall() if v is not None}


def yolo(target: Target) -> None:
    data: dict[str, Any] = {"path": str(target.final)}
    for split in target.decision.splits():
        lines = "".join(f"{image.path}\n" for image in target.decision.kept(split))
        write_text(target.out / f"{split}.txt", lines)
        key = YOLO_KEYS.get(split.lower(), split)
        if key in data:
            raise ExportError(f"splits {split!r} and another both map to the YOLO key {key!r}: rename one")
        data[key] = f"{split}.txt"
    names = class_names(target.db)
    if names:
        data["names"] = {k: names[k] for k in sorted(names)}
    write_text(target.out / "data.yaml", yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def coco(target: Target) -> None:
    for split in target.decision.splits():
        kept = target.decision.kept(split)
        folder = target.out / split
        folder.mkdir(parents=True, exist_ok=True)
        names = _link_all(kept, folder)
        document = _coco_document(target.db, split, names)
        write_text(folder / "_annotations.coco.json", json.dumps(document, ensure_ascii=False) + "\n")


def _link_all(images: list[Any], folder: Path) -> dict[str, str]:
    """A link per image in folder, named after it (prefixed by its folder when two share a name):
    image path -> link name."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for image in images:
        name = os.path.basename(image.path)
        if name in taken:
            name = image.rel_path.replace("/", "__")
        taken.add(name)
        link(image.path, folder / name)
        names[image.path] = name
    return names


def link(source: str, place: Path) -> None:
    """A hard link where the file system allows one (the export then holds the file itself, as
    `imgindex scan` and `imgindex serve` of it see it), else a symbolic link."""
    try:
        os.link(source, place)
    except OSError:
        os.symlink(source, place)


def _coco_document(db: sqlite_utils.Database, split: str, names: dict[str, str]) -> dict[str, Any]:
    """The split's COCO file(s) cut down to the kept images, file_name the link's name; without one,
    the images alone."""
    sources = [r[0] for r in db.execute("SELECT path FROM label_files WHERE split = ? AND format = 'coco'", [split])]
    out: dict[str, Any] = {"images": [], "annotations": [], "categories": []}
    by_name = {os.path.basename(p): n for p, n in names.items()}
    for source in sources:
        data = json.loads(Path(source).read_text(encoding="utf-8"))
        kept = {}
        for image in data.get("images", []):
            name = by_name.get(os.path.basename(str(image.get("file_name", ""))))
            if name is not None:
                kept[image.get("id")] = {**image, "file_name": name}
        out["images"] += list(kept.values())
        out["annotations"] += [a for a in data.get("annotations", []) if a.get("image_id") in kept]
        out["categories"] = out["categories"] or data.get("categories", [])
        for key in ("info", "licenses"):
            if key in data:
                out.setdefault(key, data[key])
    listed = {i["file_name"] for i in out["images"]}
    next_id = max([int(i.get("id", 0)) for i in out["images"] if str(i.get("id", "")).isdigit()] or [0]) + 1
    for name in names.values():
        if name not in listed:
            out["images"].append({"id": next_id, "file_name": name})
            next_id += 1
    if not out["categories"]:
        out["categories"] = [{"id": k, "name": v} for k, v in sorted(class_names(db).items())]
    return out


def voc(target: Target) -> None:
    roots = {Path(r[0]).parent.parent for r in target.db.execute("SELECT path FROM label_files WHERE format = 'voc'")}
    if len(roots) != 1:
        raise ExportError(
            "a VOC export needs the splits' annotations in one Annotations/ folder "
            f"(found {len(roots)}); export as yolo, coco or list instead"
        )
    root = roots.pop()
    main = target.out / "ImageSets" / "Main"
    for split in target.decision.splits():
        ids = "".join(f"{Path(image.path).stem}\n" for image in target.decision.kept(split))
        write_text(main / f"{split}.txt", ids)
    images = {os.path.dirname(i.path) for i in target.decision.images.values()}
    if len(images) != 1:
        raise ExportError("a VOC export needs every image in one JPEGImages/ folder; export as yolo or coco instead")
    os.symlink(root / "Annotations", target.out / "Annotations")
    os.symlink(images.pop(), target.out / "JPEGImages")


EXPORTERS: dict[str, Exporter] = {
    e.name: e
    for e in [
        Exporter("yolo", "data.yaml and a .txt image list per split (label files untouched)", yolo, unlisted),
        Exporter("coco", "per split, links to the kept images and a filtered _annotations.coco.json", coco, not_utf8),
        Exporter("voc", "ImageSets/Main/<split>.txt, with links to Annotations/ and JPEGImages/", voc),
        Exporter("list", "only the removal list, removed.csv and removed.json", lambda target: None),
    ]
}
