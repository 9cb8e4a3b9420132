"""Before a scan: the label options, the plan of every scanned folder, the row convention of custom
layouts (given, stored, or missing: then the questions' sample rows)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from .formats import LabelPlan, detect, get
from .formats.rows import Convention, parse_bbox_format, split_row
from .settings import get_setting, set_setting


@dataclass(frozen=True)
class LabelOptions:
    """The scan command's label options; None means 'not given'."""

    labels: str | None = None  # --labels NAME (a registered format)
    coco: Path | None = None  # --coco FILE
    label_first: bool | None = None  # --label-first / --box-first
    bbox_format: str | None = None  # --bbox-format xyxy|xywh|cxcywh[-norm]
    names: Path | None = None  # --names FILE: class names for the formats that read a names file

    def __post_init__(self) -> None:
        """The files as absolute paths: they are stored (label_files.path) and compared with the
        next scan's, however the path was typed (``data.yaml``, ``./data.yaml``, ``ds/data.yaml``)."""
        for name in ("coco", "names"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(os.path.abspath(Path(value).expanduser())))


class MissingAnswers(Exception):
    """A custom label layout whose row convention is neither given nor stored."""

    def __init__(self, missing: list[str], sample: list[tuple[str, str]]) -> None:
        super().__init__(", ".join(missing))
        self.missing = missing  # 'label_first' and/or 'bbox_format'
        self.sample = sample  # (file, row) pairs to show


@dataclass(frozen=True)
class LabelSetup:
    """Everything a scan needs to index labels: a plan per scanned folder, the row convention."""

    plans: dict[str, list[LabelPlan]]
    convention: Convention | None


def prepare(
    db: sqlite_utils.Database,
    splits: dict[str, list[Path]],
    options: LabelOptions,
    ask: Callable[[MissingAnswers], LabelOptions] | None = None,
    named: Mapping[Path, Path] | None = None,
) -> LabelSetup:
    """Plans and convention for a scan. When custom rows have no known layout, ``ask`` answers the
    questions; without it MissingAnswers is raised. LabelError for impossible options (nothing is
    stored then). ``named`` maps a split folder to the path it was named by, when that is a
    symlink to it: what lies beside the link (a data.yaml) counts as beside the folder."""
    plans = plan_labels(db, splits, options, named)
    try:
        return LabelSetup(plans, resolve_convention(db, plans, options))
    except MissingAnswers as missing:
        if ask is None:
            raise
        return prepare(db, splits, ask(missing), named=named)


# ---------------------------------------------------------------- plans


def plan_labels(
    db: sqlite_utils.Database,
    splits: dict[str, list[Path]],
    options: LabelOptions,
    named: Mapping[Path, Path] | None = None,
) -> dict[str, list[LabelPlan]]:
    """The label plan of every scanned folder: options first, then the options stored by an earlier
    scan of the split (`--labels`, `--coco`), then detection. Raises LabelError for impossible options."""
    plans: dict[str, list[LabelPlan]] = {}
    for split, roots in splits.items():
        override = options.labels or get_setting(db, f"labels.option.{split}")
        coco = _label_file(db, split, override, options)
        names = options.names or _stored_path(db, f"labels.names.{split}")
        plans[split] = [_plan(split, root, override, coco, options, (named or {}).get(root)) for root in roots]
        if names is not None:
            plans[split] = [get(p.format).with_names(p, names) for p in plans[split]]
    return plans


def _stored_path(db: sqlite_utils.Database, key: str) -> Path | None:
    text = get_setting(db, key)
    return Path(text) if text else None


def _label_file(db: sqlite_utils.Database, split: str, override: str | None, options: LabelOptions) -> Path | None:
    """The --coco file of the split (given or stored), unless --labels names a format taking none."""
    text = str(options.coco) if options.coco else get_setting(db, f"labels.coco.{split}")
    if not text or (override is not None and not get(override).takes_label_file):
        return None
    return Path(text)


def _plan(
    split: str, root: Path, override: str | None, coco: Path | None, options: LabelOptions, named: Path | None
) -> LabelPlan:
    """The folder's plan; a format the user did not name may give way to the row options."""
    plan = detect(split, root, override, coco)
    if named is not None:
        plan = get(plan.format).through_link(plan, named)
    if override == plan.format:
        return plan
    return get(plan.format).under_row_options(plan, options.label_first, options.bbox_format)


def remember_options(db: sqlite_utils.Database, splits: Iterable[str], options: LabelOptions) -> None:
    """Store --labels and --coco per split so the next scan reads the split the same way."""
    for split in splits:
        if options.labels is not None:
            set_setting(db, f"labels.option.{split}", options.labels)
        if options.coco is not None:
            set_setting(db, f"labels.coco.{split}", str(options.coco.resolve()))
        if options.names is not None:
            set_setting(db, f"labels.names.{split}", str(options.names.resolve()))


def keep_image(plans: Sequence[LabelPlan]) -> Callable[[str], bool] | None:
    """A filter for the image walk when a plan names its split's images (VOC ImageSets lists):
    an image is kept when any such plan takes it."""
    filters = [f for f in (get(p.format).image_filter(p) for p in plans) if f is not None]
    if not filters:
        return None
    return lambda path: any(keep(path) for keep in filters)


# ---------------------------------------------------------------- row convention


def resolve_convention(
    db: sqlite_utils.Database, plans: dict[str, list[LabelPlan]], options: LabelOptions
) -> Convention | None:
    """The row convention for formats that need one: options, else the stored answers; stores what
    it returns. None when no folder needs one. Raises MissingAnswers with a sample when unknown."""
    asking = [p for ps in plans.values() for p in ps if get(p.format).asks_row_convention]
    if not asking:
        return None
    label_first = options.label_first
    if label_first is None and get_setting(db, "labels.label_first") is not None:
        label_first = get_setting(db, "labels.label_first") == "true"
    bbox = options.bbox_format or get_setting(db, "labels.bbox_format")
    missing = (["label_first"] if label_first is None else []) + (["bbox_format"] if bbox is None else [])
    if missing:
        raise MissingAnswers(missing, sample_rows(asking))
    assert label_first is not None and bbox is not None
    store_answers(db, label_first, bbox)
    box_format, normalised = parse_bbox_format(bbox)
    return Convention(label_first, box_format, normalised)


def store_answers(db: sqlite_utils.Database, label_first: bool, bbox_format: str) -> None:
    set_setting(db, "labels.label_first", "true" if label_first else "false")
    set_setting(db, "labels.bbox_format", bbox_format)


def sample_rows(plans: Sequence[LabelPlan], limit: int = 6) -> list[tuple[str, str]]:
    """A few rows of the plans' label files, to show with the questions."""
    out: list[tuple[str, str]] = []
    for plan in plans:
        out += get(plan.format).sample_rows(plan, limit - len(out))
        if len(out) >= limit:
            break
    return out


def format_sample(sample: list[tuple[str, str]]) -> str:
    """Sample rows for the questions, one per line, under the file they come from."""
    lines: list[str] = []
    last = None
    for path, row in sample:
        if path != last:
            lines.append(f"{path}:")
            last = path
        lines.append("    " + " ".join(split_row(row)))
    return "\n".join(lines)
