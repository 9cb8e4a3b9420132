"""Splits from a dataset's own definition, so that `imgindex scan data.yaml` (or a dataset's root
folder) indexes each split with its labels: DEFINITIONS holds one reader per kind of definition,
tried in order; a new kind is one `DefinitionKind` in that list.

- A YOLO dataset file (Ultralytics' data.yaml): `path` (the dataset root: relative to the file's
  folder, else to the current folder; the file's folder when absent), `train` / `val` / `test`
  as a folder, a .txt list of images or a list of those, relative to the root, and `names` (a list
  or a mapping) for the class names. As Ultralytics does for Roboflow's files, an entry `../x` that
  does not exist is read as `x`; and an entry `a/b/c` that does not exist as the first of `b/c`,
  `c` that does (Roboflow also writes `data/train/images` for `train/images`); the summary says so.
  In a .txt list a line starting with `./` is relative to the list's
  folder, any other relative line to the root.
- A Roboflow-style root: a data.yaml at the root is read as above; without one, its split
  subfolders (train, valid or val, test) are the splits, each with its own labels (YOLO images/ +
  labels/, or _annotations.coco.json).
- A Pascal VOC root: ImageSets/Main/<split>.txt name each split's images in JPEGImages/ (trainval
  is left out when train and val are there, and so are per-class lists such as cat_train.txt).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .labels.formats.names import YAML_NAMES, names_from_mapping
from .walk import is_image_name

YOLO_SPLITS = ("train", "val", "test")
ROOT_SPLITS = ("train", "valid", "val", "validation", "test")
MAX_DEFINITION_BYTES = 1 << 20  # a dataset file is a few lines; larger is not one


class DefinitionError(ValueError):
    """A definition that cannot be followed; the message names the file and what is wrong."""


@dataclass
class Definition:
    source: str  # what the splits were read from, for the summary
    splits: dict[str, list[Path]] = field(default_factory=dict)
    members: dict[str, frozenset[str]] = field(default_factory=dict)  # split -> the images a .txt lists
    names_file: Path | None = None  # class names for the YOLO and custom splits
    notes: list[str] = field(default_factory=list)  # entries read otherwise than written

    def describe(self) -> str:
        parts = []
        for split, folders in self.splits.items():
            listed = f", {len(self.members[split])} images listed" if split in self.members else ""
            parts.append(f"{split} ({len(folders)} folder{'s' if len(folders) != 1 else ''}{listed})")
        names = f"; class names from {self.names_file}" if self.names_file else ""
        notes = "".join(f" {note}." for note in self.notes)
        return f"Splits from {self.source}: {', '.join(parts)}{names}.{notes}"


@dataclass(frozen=True)
class DefinitionKind:
    name: str
    detect: Callable[[Path], bool]
    read: Callable[[Path], Definition]


# ---------------------------------------------------------------- YOLO dataset files


def is_yolo_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in (".yaml", ".yml")


def read_yolo_file(path: Path) -> Definition:
    data = _yaml_mapping(path)
    wanted = [k for k in YOLO_SPLITS if data.get(k)]
    if not wanted:
        raise DefinitionError(f"{path}: no train, val or test entry: not a YOLO dataset file")
    root = _dataset_root(path, data.get("path"))
    definition = Definition(f"the YOLO dataset file {path}")
    for split in wanted:
        entries = data[split] if isinstance(data[split], list) else [data[split]]
        for entry in entries:
            _add_entry(definition, split, root, _entry_text(entry, split, path), path)
    definition.names_file = path if names_from_mapping(data.get("names")) else None
    if definition.names_file is None and data.get("names") is not None:
        definition.notes.append(
            f"names: {str(data['names'])[:40]!r} is no list or mapping of class names, not used; "
            "write names: [cat, dog] or names: {0: cat, 1: dog}"
        )
    return definition


def _entry_text(entry: object, split: str, path: Path) -> str:
    """A train / val / test entry as a path: a string, or digits (a folder named 2017)."""
    if isinstance(entry, (int, float)) and not isinstance(entry, bool):
        return str(entry)
    if not isinstance(entry, str):  # a nested list or mapping (a YAML alias bomb) names no path
        raise DefinitionError(
            f"{path}: {split} holds {type(entry).__name__}s; give a folder, a .txt list or a list of those"
        )
    return entry


def _yaml_mapping(path: Path) -> dict[str, Any]:
    try:
        if path.stat().st_size > MAX_DEFINITION_BYTES:
            raise DefinitionError(f"{path}: larger than a dataset file ({MAX_DEFINITION_BYTES} bytes at most)")
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
        raise DefinitionError(f"cannot read {path}: {_yaml_problem(exc)}") from None
    if not isinstance(data, dict):
        raise DefinitionError(f"{path}: not a mapping of train / val / test / names: not a YOLO dataset file")
    return data


def _yaml_problem(exc: BaseException) -> str:
    """What went wrong, in one line: a YAML error's problem and where (line and column, 1-based)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if isinstance(exc, yaml.YAMLError) and mark is not None and problem:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _dataset_root(path: Path, given: object) -> Path:
    if given is None or given == "":
        return path.parent.absolute()
    root = Path(str(given)).expanduser()
    if root.is_absolute():
        return root
    for base in (path.parent, Path.cwd()):
        if (base / root).is_dir():
            return (base / root).absolute()
    raise DefinitionError(f"{path}: path '{given}' is not a folder beside the file nor under the current folder")


def _add_entry(definition: Definition, split: str, root: Path, entry: str, source: Path) -> None:
    target, read_as = _entry_path(root, entry)
    if Path(read_as).parts != Path(entry).parts:
        definition.notes.append(f"{split}: '{entry}' read as '{read_as}' (no such path under {root})")
    if target is None:
        raise DefinitionError(
            f"{source}: {split} '{entry}' is neither a folder nor a .txt list of images (under {root})"
        )
    if target.is_dir():
        folders = definition.splits.setdefault(split, [])
        if target not in folders:
            folders.append(target)
        return
    listed = read_image_list(target, root)
    folders = definition.splits.setdefault(split, [])
    for folder in sorted({Path(os.path.dirname(p)) for p in listed}):
        if folder not in folders:
            folders.append(folder)
    definition.members[split] = definition.members.get(split, frozenset()) | listed
    missing = sorted(p for p in listed if not os.path.isfile(p))
    if missing:
        shown = ", ".join(missing[:MISSING_SHOWN]) + (" ..." if len(missing) > MISSING_SHOWN else "")
        definition.notes.append(
            f"{split}: {len(missing)} of the {len(listed)} images {target.name} lists are missing: {shown}"
        )


MISSING_SHOWN = 3  # missing images of a .txt list named in the scan's first line


def _entry_path(root: Path, entry: str) -> tuple[Path | None, str]:
    """The folder or list an entry names, and the entry as read: as written, else without its
    leading parts (Roboflow's `../x` and `data/x`)."""
    path = Path(entry).expanduser()
    if path.is_absolute():
        return (path if _usable(path) else None), entry
    parts = Path(entry.replace("\\", "/")).parts
    for k in range(len(parts)):
        candidate = root.joinpath(*parts[k:])
        if _usable(candidate) and (k == 0 or parts[k - 1] == ".." or len(parts) - k >= 2):
            return Path(os.path.abspath(candidate)), "/".join(parts[k:])
    return None, entry


def _usable(path: Path) -> bool:
    return path.is_dir() or (path.is_file() and path.suffix.lower() == ".txt")


def read_image_list(path: Path, root: Path) -> frozenset[str]:
    """The images a .txt list names, as absolute paths with their folders resolved."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError(f"cannot read the image list {path}: {exc}") from None
    out = set()
    for line in lines:
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        image = path.parent / name[2:] if name.startswith("./") else root / name
        out.add(os.path.join(os.path.realpath(image.parent), image.name))
    if not out:
        raise DefinitionError(f"{path}: lists no images")
    return frozenset(out)


# ---------------------------------------------------------------- dataset roots


def yaml_beside(folder: Path) -> Path | None:
    for name in YAML_NAMES:
        candidate = folder / name
        if candidate.is_file():
            try:
                data = _yaml_mapping(candidate)
            except DefinitionError:
                continue
            if any(data.get(k) for k in YOLO_SPLITS):
                return candidate
    return None


def split_subfolders(folder: Path) -> list[Path]:
    return [folder / name for name in ROOT_SPLITS if (folder / name).is_dir() and _holds_images(folder / name)]


def _holds_images(folder: Path) -> bool:
    return any(any(is_image_name(f) for f in files) for _, _, files in os.walk(folder))


def is_split_root(path: Path) -> bool:
    return path.is_dir() and (yaml_beside(path) is not None or bool(split_subfolders(path)))


def read_split_root(path: Path) -> Definition:
    found = yaml_beside(path)
    if found is not None:
        definition = read_yolo_file(found)
        definition.source = f"the dataset file {found}"
        return definition
    definition = Definition(f"the split folders of {path}")
    for folder in split_subfolders(path):
        definition.splits[folder.name] = [Path(os.path.abspath(folder))]
    return definition


def voc_image_sets(path: Path) -> list[Path]:
    folder = path / "ImageSets" / "Main"
    if not folder.is_dir() or not (path / "Annotations").is_dir():
        return []
    lists = sorted(p for p in folder.glob("*.txt") if "_" not in p.stem)
    stems = {p.stem for p in lists}
    return [p for p in lists if not (p.stem == "trainval" and {"train", "val"} <= stems)]


def is_voc_root(path: Path) -> bool:
    return path.is_dir() and bool(voc_image_sets(path))


def read_voc_root(path: Path) -> Definition:
    images = path / "JPEGImages"
    if not images.is_dir():
        raise DefinitionError(f"{path}: a VOC root without JPEGImages/")
    definition = Definition(f"the Pascal VOC lists in {path / 'ImageSets' / 'Main'}")
    for image_set in voc_image_sets(path):
        definition.splits[image_set.stem] = [Path(os.path.abspath(images))]
    return definition


DEFINITIONS: list[DefinitionKind] = [
    DefinitionKind("yolo-file", is_yolo_file, read_yolo_file),
    DefinitionKind("voc-root", is_voc_root, read_voc_root),
    DefinitionKind("split-root", is_split_root, read_split_root),
]


def read_definition(path: Path) -> Definition | None:
    """The splits a file or folder defines; None for a folder that is one split's images."""
    for kind in DEFINITIONS:
        if kind.detect(path):
            return kind.read(path)
    return None
