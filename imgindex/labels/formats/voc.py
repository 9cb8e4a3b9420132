"""Pascal VOC XML: <annotation><filename>, <size>, <object><name> + <bndbox> xmin/ymin/xmax/ymax in pixels."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from .base import CLASSES_OF_LABELS, LabelFormat, LabelPlan, Reading, Watched, read_text
from .images import ImageIndex
from .model import MALFORMED_ROW, MISSING_IMAGE_FILE, Parsed, Problem, Size, add_box

# (file name from <filename>, xml path) -> (absolute image path or None, size from the index or None)
ImageLookup = Callable[[str | None, str], tuple[str | None, Size | None]]


def parse_voc_text(text: str, path: str, lookup: ImageLookup) -> Parsed:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        return Parsed(error=f"not valid XML: {exc}")
    if root.tag != "annotation":
        return Parsed(error=f"not a Pascal VOC file: root element <{root.tag}>")
    filename = (root.findtext("filename") or "").strip() or None
    image_path, indexed_size = lookup(filename, path)
    parsed = Parsed(images=[image_path] if image_path else [])
    if image_path is None:
        named = filename or Path(path).stem
        parsed.problems.append(Problem(MISSING_IMAGE_FILE, path, None, f"the image {named!r} is not in the split"))
    size = _size(root) or indexed_size
    for index, obj in enumerate(root.iter("object"), start=1):
        _object(parsed, obj, (path, index), image_path, size)
    return parsed


def _size(root: ET.Element) -> Size | None:
    try:
        width = int(float(root.findtext("size/width") or 0))
        height = int(float(root.findtext("size/height") or 0))
    except (ValueError, OverflowError):  # not a number, or infinite
        return None
    return (width, height) if width > 0 and height > 0 else None


def _object(parsed: Parsed, obj: ET.Element, where: tuple[str, int], image_path: str | None, size: Size | None) -> None:
    name = (obj.findtext("name") or "").strip()
    box = obj.find("bndbox")
    try:
        if box is None:
            raise ValueError("no <bndbox>")
        values = tuple(float(box.findtext(tag) or "nan") for tag in ("xmin", "ymin", "xmax", "ymax"))
        if any(math.isnan(v) for v in values):
            raise ValueError("missing xmin/ymin/xmax/ymax")
    except ValueError as exc:
        parsed.problems.append(Problem(MALFORMED_ROW, where[0], where[1], f"object {name!r}: {exc}"))
        return
    if not name:
        parsed.problems.append(Problem(MALFORMED_ROW, where[0], where[1], "object without <name>"))
        return
    x1, y1, x2, y2 = values
    add_box(parsed, where, image_path, (None, name), (x1, y1, x2, y2), ("xyxy", False), size)


def read_image_set(path: Path) -> frozenset[str]:
    """Image ids listed in ImageSets/Main/<split>.txt (first token of each line)."""
    ids = set()
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        tokens = line.split()
        if tokens and not (len(tokens) > 1 and tokens[1] == "-1"):
            ids.add(tokens[0])
    return frozenset(ids)


# ---------------------------------------------------------------- the format


def voc_dirs(root: Path) -> tuple[Path, Path] | None:
    """(VOC root, Annotations folder) in the folder or beside it, holding .xml files."""
    for base in (root, root.parent):
        for name in ("Annotations", "annotations"):
            folder = base / name
            if folder.is_dir() and any(folder.glob("*.xml")):
                return base, folder
    return None


def image_of_xml(name: str | None, xml_path: str, images: ImageIndex) -> tuple[str | None, Size | None]:
    """The split's image of an annotation: by its <filename>, else by the XML file's stem."""
    found = images.by_name(name) if name else None
    found = found or images.by_stem(Path(xml_path).stem)
    return found, (images.sizes.get(found) if found else None)


class VocFormat(LabelFormat):
    """An Annotations/ folder of XML files; ImageSets/Main/<split>.txt, when there, names the split's images."""

    name = "voc"
    detect_order = 40
    missing = "no Annotations/ folder of .xml files found in the folder or beside it"
    class_table = CLASSES_OF_LABELS

    def find(self, split: str, root: Path) -> LabelPlan | None:
        dirs = voc_dirs(root)
        if dirs is None:
            return None
        voc_root, ann_dir = dirs
        image_set = voc_root / "ImageSets" / "Main" / f"{split}.txt"
        members = read_image_set(image_set) if image_set.is_file() else None
        why = f"VOC annotations in {ann_dir}" + (f", split from {image_set}" if members is not None else "")
        return LabelPlan(split, root, self.name, label_dir=ann_dir, members=members, reason=why)

    def through_link(self, plan: LabelPlan, named: Path) -> LabelPlan:
        """A folder named through a link (an export's JPEGImages/): the ImageSets list beside the
        link names the split's images, before the one beside the folder it leads to."""
        dirs = voc_dirs(named)
        image_set = dirs[0] / "ImageSets" / "Main" / f"{plan.split}.txt" if dirs else None
        if image_set is None or not image_set.is_file():
            return plan
        return replace(plan, members=read_image_set(image_set), reason=f"{plan.reason}; split from {image_set}")

    def image_filter(self, plan: LabelPlan) -> Callable[[str], bool] | None:
        members = plan.members
        return None if members is None else lambda path: Path(path).stem in members

    def files(self, plan: LabelPlan) -> list[Path]:
        assert plan.label_dir is not None
        xmls = sorted(plan.label_dir.rglob("*.xml"))
        return [p for p in xmls if plan.members is None or p.stem in plan.members]

    def watched(self, plan: LabelPlan) -> Watched:
        assert plan.label_dir is not None
        return Watched(folders=((plan.label_dir, True),))

    def read(self, plan: LabelPlan, path: Path, reading: Reading) -> Parsed:
        text, error = read_text(path)
        if text is None:
            return Parsed(error=error)
        return parse_voc_text(text, str(path), lambda name, xml: image_of_xml(name, xml, reading.images))

    def links_changed(
        self, plan: LabelPlan, path: str, linked: set[str], images: ImageIndex, touched: set[str]
    ) -> bool:
        """A file that found no image is stale once an image of its stem is there."""
        return not linked and images.by_stem(Path(path).stem) is not None


FORMAT = VocFormat()
