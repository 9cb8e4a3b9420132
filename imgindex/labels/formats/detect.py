"""Which label format a split folder uses, where its label files are, and which files they are."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from .names import TEXT_NAMES, find_names_file
from .rows import looks_like_yolo, numeric_rows
from .voc import read_image_set

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".mpo"}
)
CHOICES = ("yolo", "coco", "voc", "folders", "custom", "none")
SAMPLE_FILES = 20  # label files read to tell YOLO from a custom layout
SAMPLE_ROWS = 200


class LabelError(ValueError):
    """A label option that cannot be honoured for a folder; the message says what to do."""


@dataclass(frozen=True)
class LabelPlan:
    """How one split's labels are read."""

    split: str
    root: Path  # the scanned folder
    format: str  # yolo | coco | voc | folders | custom | none
    label_dir: Path | None = None  # yolo/custom: folder of .txt/.csv; voc: Annotations folder
    image_dir: Path | None = None  # folder whose layout label_dir mirrors (yolo/custom)
    coco_files: tuple[Path, ...] = ()
    names_file: Path | None = None  # data.yaml / dataset.yaml / classes.txt
    members: frozenset[str] | None = None  # VOC ImageSets/Main/<split>.txt ids (image stems)
    reason: str = ""


def is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def detect(split: str, root: Path, override: str | None = None, coco: Path | None = None) -> LabelPlan:
    """The label plan of `root`: the `override` format (or `coco` file) when given, else the first
    convention found among COCO, YOLO (custom when its rows do not fit YOLO), VOC, class folders."""
    root = root.resolve()
    if override == "none":
        return LabelPlan(split, root, "none", reason="--labels none")
    if coco is not None or override == "coco":
        return _coco_plan(split, root, coco)
    if override is not None:
        plan = {"yolo": _text_plan, "custom": _text_plan, "voc": _voc_plan, "folders": _folders_plan}[override](
            split, root
        )
        if plan is None:
            raise LabelError(f"--labels {override}: {_MISSING[override]} for split {split!r} ({root})")
        return replace(plan, format=override) if override in ("yolo", "custom") else plan
    for finder in (_coco_plan_or_none, _text_plan, _voc_plan, _folders_plan):
        plan = finder(split, root)
        if plan is not None:
            return plan
    return LabelPlan(split, root, "none", reason="no labels found")


_MISSING = {
    "yolo": "no labels/ folder found beside images/ (or inside the folder)",
    "custom": "no labels/ folder found beside images/ (or inside the folder)",
    "voc": "no Annotations/ folder of .xml files found in the folder or beside it",
    "folders": "no class subfolders holding images found in the folder",
}


def _coco_plan(split: str, root: Path, coco: Path | None) -> LabelPlan:
    if coco is not None:
        if not coco.is_file():
            raise LabelError(f"--coco {coco}: no such file")
        return LabelPlan(split, root, "coco", coco_files=(coco.resolve(),), reason=f"--coco {coco}")
    plan = _coco_plan_or_none(split, root)
    if plan is None:
        raise LabelError(
            f"--labels coco: no _annotations.coco.json or annotations/instances_{root.name}.json "
            f"found for split {split!r} ({root}); name the file with --coco FILE"
        )
    return plan


def coco_candidates(root: Path) -> list[Path]:
    """COCO files by convention: Roboflow's _annotations.coco.json, instances_*.json in the folder,
    and COCO's annotations/instances_<folder name>.json in the folder or up to two levels above."""
    found = [root / "_annotations.coco.json"] if (root / "_annotations.coco.json").is_file() else []
    found += sorted(p for p in root.glob("instances_*.json") if p.is_file())
    for base in (root, root.parent, root.parent.parent):
        path = base / "annotations" / f"instances_{root.name}.json"
        if path.is_file() and path not in found:
            found.append(path)
    return found


def _coco_plan_or_none(split: str, root: Path) -> LabelPlan | None:
    files = coco_candidates(root)
    if not files:
        return None
    return LabelPlan(split, root, "coco", coco_files=tuple(files), reason=f"COCO file {files[0].name}")


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


def _text_plan(split: str, root: Path) -> LabelPlan | None:
    dirs = yolo_dirs(root)
    if dirs is None:
        return None
    image_dir, label_dir = dirs
    names = find_names_file([root, label_dir])
    files = list_text_files(label_dir)
    rows = [r for f in files[:SAMPLE_FILES] for r in numeric_rows(_read(f), SAMPLE_ROWS)]
    csv = any(f.suffix.lower() == ".csv" for f in files[:SAMPLE_FILES])
    fmt = "yolo" if looks_like_yolo(rows) and not csv else "custom"
    why = f"label files in {label_dir}" + ("" if fmt == "yolo" else " whose rows are not YOLO's")
    return LabelPlan(split, root, fmt, label_dir=label_dir, image_dir=image_dir, names_file=names, reason=why)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def list_text_files(label_dir: Path) -> list[Path]:
    """Every .txt/.csv label file below `label_dir`, sorted; names files (classes.txt) left out."""
    return [Path(p) for p in text_file_stats(label_dir)]


def text_file_stats(label_dir: Path) -> dict[str, tuple[int, int]]:
    """path -> (size, mtime_ns) of every .txt/.csv label file below `label_dir`, in sorted order."""
    out: dict[str, tuple[int, int]] = {}
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


def voc_dirs(root: Path) -> tuple[Path, Path] | None:
    """(VOC root, Annotations folder) in the folder or beside it, holding .xml files."""
    for base in (root, root.parent):
        for name in ("Annotations", "annotations"):
            folder = base / name
            if folder.is_dir() and any(folder.glob("*.xml")):
                return base, folder
    return None


def _voc_plan(split: str, root: Path) -> LabelPlan | None:
    dirs = voc_dirs(root)
    if dirs is None:
        return None
    voc_root, ann_dir = dirs
    image_set = voc_root / "ImageSets" / "Main" / f"{split}.txt"
    members = read_image_set(image_set) if image_set.is_file() else None
    why = f"VOC annotations in {ann_dir}" + (f", split from {image_set}" if members is not None else "")
    return LabelPlan(split, root, "voc", label_dir=ann_dir, members=members, reason=why)


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
    with os.scandir(root) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.is_dir() and not entry.name.startswith(".") and _holds_images(Path(entry.path)):
                found.append(Path(entry.path))
    return found


def _holds_images(folder: Path) -> bool:
    try:
        with os.scandir(folder) as entries:
            return any(is_image(e.name) for e in entries)
    except OSError:
        return False


def _folders_plan(split: str, root: Path) -> LabelPlan | None:
    if not root.is_dir():
        return None
    with os.scandir(root) as entries:
        if any(e.is_file() and is_image(e.name) for e in entries):
            return None
    folders = class_folders(root)
    if len(folders) < 2 or any(f.name.lower() in LAYOUT_NAMES for f in folders):
        return None  # one folder is no classification; train/valid/test or images/labels are a layout
    return LabelPlan(split, root, "folders", reason=f"{len(folders)} class subfolders")


def label_files(plan: LabelPlan) -> list[Path]:
    """The files (class folders for 'folders') whose content defines the split's labels."""
    if plan.format in ("yolo", "custom"):
        assert plan.label_dir is not None
        files = list_text_files(plan.label_dir)
        return files + ([plan.names_file] if plan.names_file else [])
    if plan.format == "voc":
        assert plan.label_dir is not None
        xmls = sorted(plan.label_dir.rglob("*.xml"))
        return [p for p in xmls if plan.members is None or p.stem in plan.members]
    if plan.format == "coco":
        return list(plan.coco_files)
    if plan.format == "folders":
        return class_folders(plan.root)
    return []


def in_split(plan: LabelPlan, image_path: str) -> bool:
    """False for images a VOC ImageSets list leaves out of this split; True otherwise."""
    return plan.members is None or Path(image_path).stem in plan.members
