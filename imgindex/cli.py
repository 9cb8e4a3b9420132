"""Command line: a thin layer of click over the typed core."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from . import __version__, query, store
from .labels import prompt as labelprompt
from .labels.formats import CHOICES, LabelError
from .labels.indexing import LabelOptions, LabelSetup, MissingAnswers, prepare, remember_options
from .near import groups as duplicates
from .near import pairs as near_index
from .scan import Splits, default_workers, scan

F = TypeVar("F", bound=Callable[..., Any])
BBOX_FORMATS = [value for value, _ in labelprompt.BBOX_OPTIONS]
SPLIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def db_option(fn: F) -> F:
    return click.option(
        "--db",
        "db_path",
        type=click.Path(dir_okay=False),
        default="imgindex.db",
        show_default=True,
        envvar="IMGINDEX_DB",
        show_envvar=True,
        help="The index database.",
    )(fn)


def quiet_option(fn: F) -> F:
    return click.option("-q", "--quiet", is_flag=True, help="No progress bar.")(fn)


@click.group()
@click.version_option(__version__, prog_name="imgindex")
def cli() -> None:
    """Index image datasets into SQLite: duplicates, leakage between splits, statistics."""


def parse_split(arg: str) -> tuple[str, Path]:
    """SPLIT=DIR, or a bare DIR named after its folder."""
    if "=" in arg and not os.path.isdir(arg):
        name, _, folder = arg.partition("=")
        if not SPLIT_NAME.match(name):
            raise click.BadParameter(
                f"'{arg}': the split name before '=' must be letters, digits, '_', '-' or '.', "
                "e.g. train=data/images/train"
            )
        if not folder:
            raise click.BadParameter(f"'{arg}': give the folder after '=', e.g. {name}=data/images/{name}")
    else:
        folder = arg
        name = os.path.basename(os.path.abspath(folder))
    return name, _existing_folder(folder, arg)


def _existing_folder(folder: str, arg: str) -> Path:
    path = Path(folder).expanduser()
    if not path.exists():
        raise click.BadParameter(f"'{arg}': folder '{folder}' does not exist. Give SPLIT=DIR with an existing folder.")
    if not path.is_dir():
        raise click.BadParameter(f"'{arg}': '{folder}' is a file, not a folder. Give the folder that holds the images.")
    return path.resolve()


def parse_splits(args: tuple[str, ...]) -> Splits:
    if not args:
        raise click.UsageError("Give at least one folder to scan, e.g. imgindex scan train=data/train val=data/val")
    splits: Splits = {}
    for arg in args:
        name, folder = parse_split(arg)
        if folder not in splits.setdefault(name, []):
            splits[name].append(folder)
    return splits


@cli.command(name="scan")
@click.argument("folders", nargs=-1, metavar="SPLIT=DIR [SPLIT=DIR ...]")
@db_option
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Worker processes [default: CPUs].")
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=256, show_default=True, help="Rows written per transaction."
)
@quiet_option
@click.option(
    "--labels",
    "label_format",
    type=labelprompt.FormatChoice(CHOICES),
    help="Label format of the folders [default: detected; remembered per split].",
)
@click.option(
    "--coco",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="COCO JSON file holding the labels of the scanned split(s).",
)
@click.option(
    "--label-first/--box-first",
    "label_first",
    default=None,
    help="Rows without a convention: is the class id before or after the box?",
)
@click.option(
    "--bbox-format",
    type=click.Choice(BBOX_FORMATS),
    help="Rows without a convention: box layout, '-norm' when normalised to 0..1.",
)
@click.option(
    "--retry-errors",
    is_flag=True,
    help="Read again the files that failed before, even if unchanged (e.g. after fixing permissions).",
)
def scan_command(
    folders: tuple[str, ...],
    db_path: str,
    workers: int | None,
    batch_size: int,
    quiet: bool,
    label_format: str | None,
    coco: Path | None,
    label_first: bool | None,
    bbox_format: str | None,
    retry_errors: bool,
) -> None:
    """Index the images of each SPLIT=DIR folder (recursively), then their labels, incrementally.

    A bare DIR is indexed under the split named after its folder. Unchanged files (same size and
    mtime) are not opened again; files gone from a scanned folder leave the index. Labels (YOLO,
    COCO, Pascal VOC, class folders) are detected; --labels overrides.
    """
    splits = parse_splits(folders)
    progress = not quiet and sys.stderr.isatty()
    options = LabelOptions(label_format, coco, label_first, bbox_format)
    setup = label_setup(db_path, splits, options)
    try:
        summary = scan(
            db_path,
            splits,
            workers=workers or default_workers(),
            progress=progress,
            batch_size=batch_size,
            label_setup=setup,
            retry_errors=retry_errors,
        )
    except KeyboardInterrupt:
        click.echo("Interrupted: what was indexed is kept; run the same command again to finish.", err=True)
        sys.exit(130)
    db = store.open_db(db_path)
    remember_options(db, splits, options)
    db.close()
    click.echo(summary.line())


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def label_setup(db_path: str, splits: Splits, options: LabelOptions) -> LabelSetup:
    """Label plans for the scan; asks DataGradients' questions on a terminal when rows have no convention."""
    db = store.open_db(db_path)
    try:
        return prepare(db, splits, options)
    except LabelError as exc:
        raise click.ClickException(str(exc)) from None
    except MissingAnswers as exc:
        return prepare(db, splits, answer(exc, options))
    finally:
        db.close()


def answer(missing: MissingAnswers, options: LabelOptions) -> LabelOptions:
    if not interactive():
        raise click.ClickException(
            "The label files have no known layout, e.g. rows like "
            f"'{missing.sample[0][1] if missing.sample else ''}'. Say how to read them: "
            + " and ".join(MISSING_FLAGS[m] for m in missing.missing)
            + " (the answers are stored in the index and reused by later scans)."
        )
    label_first = options.label_first
    if "label_first" in missing.missing:
        label_first = labelprompt.ask_label_first(missing.sample)
    bbox = options.bbox_format or (
        labelprompt.ask_bbox_format(missing.sample) if "bbox_format" in missing.missing else None
    )
    return LabelOptions(options.labels, options.coco, label_first, bbox)


MISSING_FLAGS = {
    "label_first": "--label-first or --box-first (is the class id before or after the box?)",
    "bbox_format": "--bbox-format " + "|".join(value for value, _ in labelprompt.BBOX_OPTIONS),
}


def open_existing(db_path: str) -> Any:
    if not Path(db_path).exists():
        raise click.ClickException(f"No index at {db_path}: run `imgindex scan SPLIT=DIR ...` first, or pass --db.")
    db = store.open_db(db_path)
    near_index.refresh(db)  # near_pairs catch up with rows written by other tools
    return db


@cli.command(name="duplicates")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print the groups as JSON.")
@click.option(
    "--max-distance",
    type=click.IntRange(0, duplicates.MAX_DISTANCE),
    default=duplicates.DEFAULT_MAX_DISTANCE,
    show_default=True,
    help="Largest dHash distance (bits of 64) between two duplicates; 0 = equal dHash.",
)
def duplicates_command(db_path: str, as_json: bool, max_distance: int) -> None:
    """Duplicate groups within each split and across each pair of splits.

    Two images are duplicates when their dHashes differ in at most --max-distance bits and the
    finer 256-bit dHash and brightness agree (flat images also need equal colours); groups are
    the connected components of such pairs. Each group is byte-identical, pixel-identical or
    perceptual.
    """
    db = open_existing(db_path)
    if as_json:
        doc = duplicates.find_duplicates(db, max_distance)
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    for line in duplicates.describe(db, max_distance):
        click.echo(line)


def sql_error_message(exc: sqlite3.Error) -> str:
    if "readonly" in str(exc):
        return "imgindex sql only reads the index; `imgindex scan` is what changes it."
    return (
        f'SQL error: {exc}. The tables and views are listed by `imgindex sql "select type, name from sqlite_master"`.'
    )


@cli.command(name="sql")
@click.argument("sql")
@db_option
@click.option("--json", "fmt", flag_value="json", help="Print rows as a JSON list of objects.")
@click.option("--csv", "fmt", flag_value="csv", help="Print rows as CSV with a header.")
def sql_command(sql: str, db_path: str, fmt: str | None) -> None:
    """Run a read-only SQL query against the index."""
    open_existing(db_path).close()  # applies the schema and views to an older index
    db = store.open_db(db_path, readonly=True)
    try:
        columns, rows = query.run_query(db, sql)
    except sqlite3.Error as exc:
        raise click.ClickException(sql_error_message(exc)) from None
    render = {"json": query.as_json, "csv": query.as_csv}.get(fmt or "", query.as_table)
    click.echo(render(columns, rows))


@cli.command(name="report")
@db_option
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default="logs",
    show_default=True,
    help="Folder of reports: OUT/TITLE/Report.pdf, summary.json and archive_*/.",
)
@click.option("--title", default=None, help="Report title and folder name [default: the database's file name].")
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="DataGradients YAML (report_sections) choosing the features [default: all with data].",
)
def report_command(db_path: str, out_dir: str, title: str | None, config_path: str | None) -> None:
    """Write Report.pdf and summary.json (DataGradients' layout) from the index alone."""
    from .report import ConfigError, ReportError, build_report

    try:
        outcome = build_report(db_path, out_dir=out_dir, title=title, config=config_path)
    except (ConfigError, ReportError) as exc:
        raise click.ClickException(str(exc)) from None
    for error in outcome.errors:
        click.echo(f"Feature failed: {error['title']}: {error['error']}", err=True)
    click.echo(outcome.message())


@cli.command(name="watch")
@click.argument("folders", nargs=-1, metavar="SPLIT=DIR [SPLIT=DIR ...]")
@db_option
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Worker processes [default: CPUs].")
@click.option(
    "--settle",
    type=click.FloatRange(min=0.05, max=60),
    default=0.5,
    show_default=True,
    help="Seconds a file must stay unchanged before it is read.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="Most files applied per transaction.",
)
@quiet_option
def watch_command(
    folders: tuple[str, ...], db_path: str, workers: int | None, settle: float, batch_size: int, quiet: bool
) -> None:
    """Scan each SPLIT=DIR, then keep the index current as files change, until Ctrl-C.

    Created, modified, moved and deleted images and label files reach the database in about a
    second; a file being written is read once it stops changing. Other programs can read the
    index meanwhile. Labels are read as `imgindex scan` read them (format and answers stored).
    """
    from .watch import Watcher, split_roots

    splits = parse_splits(folders)

    def report(batch: Any) -> None:
        if not quiet:
            labels = f", {batch.labels.read} label files read" if batch.labels and batch.labels.read else ""
            click.echo(
                f"{time.strftime('%H:%M:%S')} {batch.new} new, {batch.changed} changed, "
                f"{batch.removed} removed, {batch.errors} errors{labels}"
            )

    def ready(initial: Any) -> None:
        if not quiet:
            click.echo(f"Initial scan: {initial.line()}")
        names = ", ".join(f"{split}={folder}" for split, folder in split_roots(splits))
        click.echo(f"Watching {names} (Ctrl-C to stop)")

    setup = label_setup(db_path, splits, LabelOptions())  # the label answers stored by `imgindex scan`
    watcher = Watcher(
        db_path,
        splits,
        settle=settle,
        batch_size=batch_size,
        workers=workers or default_workers(),
        on_batch=report,
        on_ready=ready,
        label_setup=setup,
    )
    stop_on_signals(watcher.stop)
    click.echo(watcher.run().line())


def stop_on_signals(stop: threading.Event) -> None:
    """SIGINT (Ctrl-C) and SIGTERM end the watch after the batch in progress."""

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


@cli.command(name="serve")
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8001, show_default=True, help="Port to listen on.")
def serve_command(db_path: str, host: str, port: int) -> None:
    """Browse the index in Datasette: thumbnails, duplicate and leakage groups, canned queries."""
    import asyncio

    import uvicorn
    from datasette.app import Datasette

    open_existing(db_path).close()  # applies the schema and views to an older index
    datasette = Datasette([db_path])
    asyncio.run(datasette.invoke_startup())
    name = next(n for n in datasette.databases if n != "_internal")
    click.echo(f"Serving {db_path} at http://{host}:{port}/{name} (Ctrl-C to stop)")
    uvicorn.run(datasette.app(), host=host, port=port, log_level="warning", lifespan="on")
