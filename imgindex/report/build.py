"""Run the features over the index and write Report.pdf and summary.json in DataGradients' layout."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from .. import __version__, store
from . import outputs, summary
from .config import FeatureRequest, Section, default_sections, load_config
from .features import FEATURES, NEEDS_PIXELS, Context, FeatureResult
from .pdf import Block, write_pdf
from .plots import png_bytes

FINISHED = "We have finished evaluating your dataset!"
PDF_SUBJECT = "imgindex report"  # + summary.json's metadata.timestamp: the PDF's Subject names its summary


class ReportError(Exception):
    """The report cannot be written; the message says what to do."""


@dataclass
class ReportOutcome:
    directory: Path  # DIR/TITLE, holding the latest Report.pdf and summary.json
    archive: Path  # DIR/TITLE/archive_YYYYmmdd-HHMMSS
    features: list[str]
    errors: list[dict[str, str]]
    seconds: dict[str, float]  # time per feature (its queries included), "pdf" and "summary"

    @property
    def pdf(self) -> Path:
        return self.directory / "Report.pdf"

    @property
    def summary(self) -> Path:
        return self.directory / "summary.json"

    def message(self) -> str:
        return f"{FINISHED}\n\nThe results can be seen in:\n    - {self.directory}\n    - {self.archive}"


def folder_name(title: str) -> str:
    """The report's folder under --out: the title with its path separators as '_' and without
    leading dots (a title '../x' names the visible folder '_x', inside --out)."""
    name = title.replace("/", "_").replace("\\", "_").lstrip(".")
    return name or "report"


def default_title(db_path: Path) -> str:
    return db_path.stem or "imgindex"


def build_report(
    db_path: str | Path,
    out_dir: str | Path = "logs",
    title: str | None = None,
    config: str | Path | None = None,
    now: datetime | None = None,
    sections: list[Section] | None = None,
) -> ReportOutcome:
    """Write the report of the index at ``db_path``, which is only read (opened read-only). The
    features are ``sections`` when given, else those of the ``config`` YAML, else every feature."""
    database = _open(Path(db_path).resolve())
    try:
        with store.read_snapshot(database):  # one state of the index for every feature
            return write_report(database, db_path, out_dir, title, config, now, sections)
    finally:
        database.close()


def write_report(
    database: sqlite_utils.Database,
    db_path: str | Path,
    out_dir: str | Path = "logs",
    title: str | None = None,
    config: str | Path | None = None,
    now: datetime | None = None,
    sections: list[Section] | None = None,
) -> ReportOutcome:
    """build_report on an index already open (``db_path`` names it in the report)."""
    db_path = Path(db_path).resolve()
    if sections is None:
        sections = load_config(config) if config else default_sections()
    title = title or default_title(db_path)
    now = now or datetime.now().astimezone()
    seconds: dict[str, float] = {}
    blocks, errors = run_features(Context(database, db_path), sections, seconds)
    config_json = summary.data_config(database.conn, db_path)
    try:
        return _write(Path(out_dir), title, now, db_path, blocks, errors, config_json, seconds)
    except OSError as err:
        raise ReportError(f"cannot write the report under {out_dir}: {err}; choose another folder with --out") from err


def _open(db_path: Path) -> sqlite_utils.Database:
    """The index, read-only; a file that is not an index of this version is a ReportError saying what to do."""
    try:
        return store.open_readonly(db_path)
    except store.IndexStateError as err:
        raise ReportError(str(err)) from err


def run_features(
    ctx: Context, sections: list[Section], seconds: dict[str, float]
) -> tuple[list[Block], list[dict[str, str]]]:
    blocks: list[Block] = []
    errors: list[dict[str, str]] = []
    for section in sections:
        for request in section.features:
            started = time.perf_counter()
            if request.name in NEEDS_PIXELS:
                errors.append(
                    {"title": request.name, "error": "needs the images' pixels; the report reads only the index"}
                )
                continue
            spec = FEATURES[request.name]
            try:
                result = spec.compute(ctx, request.params)
                if result is None and request.explicit:
                    result = _no_data(request)
                if result is not None:
                    png = png_bytes(result.figure) if result.figure is not None else None
                    blocks.append(Block(section.name, result, png))
            except Exception as err:  # noqa: BLE001 -- a failing feature must not take the report down
                errors.append({"title": spec.title, "error": f"{request.name}: {type(err).__name__}: {err}"})
            seconds[request.name] = time.perf_counter() - started
    return blocks, errors


def _no_data(request: FeatureRequest) -> FeatureResult:
    spec = FEATURES[request.name]
    return FeatureResult(
        name=spec.name,
        title=spec.title,
        stats={},
        description="The index holds no data for this feature.",
    )


def _write(
    out_dir: Path,
    title: str,
    now: datetime,
    db_path: Path,
    blocks: list[Block],
    errors: list[dict[str, str]],
    config_json: dict[str, Any],
    seconds: dict[str, float],
) -> ReportOutcome:
    """Write both files into a new archive folder, then publish them (outputs.publish: the archive
    completed, then Report.pdf and summary.json replaced, in that order, each complete)."""
    directory = (out_dir / folder_name(title)).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    outputs.recover(directory)
    stamp = f"{now:%Y%m%d-%H%M%S}"
    staging = outputs.staging_folder(directory, stamp)
    subtitle = f"{db_path.name} - {now:%Y-%m-%d %H:%M:%S %Z} - imgindex {__version__}"
    timestamp = now.isoformat(timespec="seconds")
    started = time.perf_counter()
    outputs.write_synced(
        staging / outputs.PDF,
        lambda path: write_pdf(path, title, subtitle, blocks, errors, subject=f"{PDF_SUBJECT} {timestamp}"),
    )
    seconds["pdf"] = time.perf_counter() - started
    started = time.perf_counter()
    doc = summary.document(title, timestamp, config_json, errors, [b.result for b in blocks])
    outputs.write_synced(staging / outputs.SUMMARY, lambda path: summary.write(path, doc))
    archive = outputs.publish(directory, staging, stamp)
    seconds["summary"] = time.perf_counter() - started
    return ReportOutcome(directory, archive, [b.result.name for b in blocks], errors, seconds)
