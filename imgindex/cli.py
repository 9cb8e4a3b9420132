"""Command line: click over the library API (imgindex.api.Index): it parses options, asks the
terminal questions and draws progress through callbacks, and prints; the work happens in the library."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click.core import ParameterSource

from . import __version__, check, export, quality, query, reviews, store
from .api import SPLIT_NAME, Index, SplitFolderError, usable_folder
from .check import outputs as check_outputs
from .datasets import Definition, DefinitionError, read_definition
from .executors import EXECUTORS, executor_name
from .executors.cluster import ClusterError
from .extract import MAX_PIXELS
from .labels import LabelOptions, MissingAnswers
from .labels import prompt as labelprompt
from .labels.formats import CHOICES, LabelError
from .near import groups as duplicates
from .quality import text as quality_text
from .scan import Progress, ScanSummary, Splits
from .serve.thumbnails import DEFAULT_CONCURRENT, DEFAULT_MAX_PIXELS
from .walk import stored_text

if TYPE_CHECKING:
    from .report.config import Section

F = TypeVar("F", bound=Callable[..., Any])
BBOX_FORMATS = [value for value, _ in labelprompt.BBOX_OPTIONS]


def db_option(fn: F) -> F:
    return click.option(
        "--db",
        "db_path",
        type=click.Path(dir_okay=False),
        default="imgindex.db",
        show_default=True,
        envvar="IMGINDEX_DB",
        show_envvar=True,
        callback=_named_file,
        help="The index database.",
    )(fn)


def _named_file(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not value.strip():
        raise click.BadParameter("give the index file's path, e.g. --db imgindex.db (or leave IMGINDEX_DB unset)")
    return value


def executor_option(fn: F) -> F:
    fn = click.option(
        "--scheduler",
        metavar="ADDRESS",
        envvar="IMGINDEX_SCHEDULER",
        show_envvar=True,
        help="Decode on the workers of this Dask scheduler (tcp://host:8786), which must see the files at "
        "the same paths; needs `pip install 'imgindex[dask]'`.",
    )(fn)
    return click.option(
        "--executor",
        type=click.Choice(list(EXECUTORS)),
        default=None,
        help="Where images are decoded: a local process pool, this process alone, or a Dask cluster (a local "
        "one of --workers processes unless --scheduler is given) [default: processes; dask with --scheduler].",
    )(fn)


def chosen_executor(executor: str | None, scheduler: str | None) -> str:
    """The executor's name; a usage error when --executor and --scheduler disagree."""
    try:
        return executor_name(executor, scheduler)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def max_pixels_option(fn: F) -> F:
    return click.option(
        "--max-pixels",
        type=click.IntRange(min=1),
        default=MAX_PIXELS,
        show_default=True,
        help="Most pixels decoded per image (a JPEG at its 1/8..1/1 draft scale); a larger image is "
        "recorded with an error. Bounds each worker's memory.",
    )(fn)


def name_value_pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    """Repeated NAME=VALUE options as a mapping; ValueError naming the value and `what` to give."""
    pairs: dict[str, str] = {}
    for value in values:
        name, sep, given = value.partition("=")
        if not sep or not given:
            raise ValueError(f"'{value}': give {what}")
        pairs[name.strip()] = given.strip()
    return pairs


def parse_threshold(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    """FLAG=VALUE pairs, each checked against the quality flags."""
    try:
        pairs = name_value_pairs(values, f"FLAG=VALUE, e.g. {param.opts[0]} dark=0.25 (or dark=default)")
        quality.parse_thresholds(pairs)  # a ThresholdError is a ValueError
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return pairs


def quiet_option(fn: F) -> F:
    return click.option("-q", "--quiet", is_flag=True, help="No progress bar.")(fn)


class IndexCommands(click.Group):
    """The commands; an --db file that cannot be used (store.IndexStateError) ends any of them with
    its one-line message instead of a traceback, and Ctrl-C with exit status 130, as a shell's
    commands end (each command leaves its files whole: see `scan` and `report`)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (store.IndexStateError, SplitFolderError) as exc:
            raise click.ClickException(str(exc)) from None
        except (KeyboardInterrupt, click.Abort) as exc:
            if isinstance(exc, click.Abort) and not isinstance(exc.__context__, KeyboardInterrupt):
                raise
            click.echo("Interrupted.", err=True)
            ctx.exit(130)


@click.group(cls=IndexCommands)
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
        name = stored_text(os.path.basename(os.path.abspath(folder)))  # a name that is not UTF-8, escaped
    return name, _existing_folder(folder, arg)


def _existing_folder(folder: str, arg: str) -> Path:
    try:
        path = usable_folder(Path(folder).expanduser())
    except SplitFolderError as exc:
        raise click.BadParameter(f"'{arg}': {exc}") from None
    return Path(os.path.abspath(path))  # as named: the scan resolves it, and looks beside a symlink for names


def parse_splits(args: tuple[str, ...]) -> Splits:
    if not args:
        raise click.UsageError("Give at least one folder to scan, e.g. imgindex scan train=data/train val=data/val")
    splits: Splits = {}
    for arg in args:
        name, folder = parse_split(arg)
        if folder not in splits.setdefault(name, []):
            splits[name].append(folder)
    return splits


def scan_targets(args: tuple[str, ...]) -> tuple[Splits, Definition | None]:
    """The splits to scan: from a dataset's definition (a data.yaml, a dataset root) when the one
    argument is one, else from SPLIT=DIR arguments."""
    for arg in args:
        if "=" in arg and not os.path.exists(arg):
            continue
        try:
            definition = read_definition(Path(arg).expanduser())
        except DefinitionError as exc:
            raise click.ClickException(str(exc)) from None
        if definition is not None:
            if len(args) > 1:
                raise click.UsageError(
                    f"'{arg}' defines its own splits: scan it alone, or name each split as SPLIT=DIR instead"
                )
            return definition.splits, definition
    return parse_splits(args), None


@cli.command(name="scan")
@click.argument("folders", nargs=-1, metavar="SPLIT=DIR [SPLIT=DIR ...] | DATA.YAML | ROOT")
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
    help="Read again the images and label files that failed before, even if unchanged (e.g. after fixing permissions).",
)
@click.option(
    "--quality-threshold",
    "quality_thresholds",
    multiple=True,
    metavar="FLAG=VALUE",
    callback=parse_threshold,
    help="Judge the image-quality flags with this threshold, kept for later runs (as `imgindex quality "
    "--threshold`). Repeatable.",
)
@click.option(
    "--names",
    "names_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Class names for YOLO and custom labels: a data.yaml, a text file (one name a line) or a COCO "
    "json [default: found beside the labels; remembered per split].",
)
@max_pixels_option
@executor_option
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
    quality_thresholds: dict[str, str],
    names_path: Path | None,
    max_pixels: int,
    executor: str | None,
    scheduler: str | None,
) -> None:
    """Index the images of each SPLIT=DIR folder (recursively), then their labels, incrementally.

    A bare DIR is indexed under the split named after its folder. A dataset's own definition
    gives the splits instead: a YOLO data.yaml (folders, lists of folders or .txt lists of images,
    and the class names), or a dataset root with a data.yaml, with train/valid/test subfolders
    (Roboflow) or with ImageSets/Main lists (Pascal VOC). Unchanged files (same size and mtime)
    are not opened again; files gone from a scanned folder leave the index. Labels (YOLO, COCO,
    Pascal VOC, class folders) are detected; --labels overrides.
    """
    if label_format == "none" and (coco is not None or label_first is not None or bbox_format or names_path):
        raise click.UsageError(
            "--labels none reads no labels: drop it, or drop --coco, --label-first/--box-first, "
            "--bbox-format and --names."
        )
    splits, definition = scan_targets(folders)
    names = names_path or (definition.names_file if definition else None)
    options = LabelOptions(label_format, coco, label_first, bbox_format, names)
    if definition is not None:
        click.echo(definition.describe())
    with open_index(db_path) as index, progress_bar(quiet) as on_progress:
        try:
            summary = index.scan(
                splits,
                labels=options,
                ask=lambda missing: answer(missing, options),
                workers=workers,
                executor=chosen_executor(executor, scheduler),
                scheduler=scheduler,
                batch_size=batch_size,
                retry_errors=retry_errors,
                on_progress=on_progress,
                max_pixels=max_pixels,
                quality_thresholds=quality_thresholds,
                members=definition.members if definition else None,
            )
        except (LabelError, ClusterError) as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            click.echo("Interrupted: what was indexed is kept; run the same command again to finish.", err=True)
            sys.exit(130)
    warn_skipped(summary)
    click.echo(summary.line())


SKIPPED_SHOWN = 5  # links named in the warning about skipped links


def warn_skipped(summary: ScanSummary) -> None:
    """A line on stderr for each kind of entry the scan could not follow: links that lead nowhere,
    links that lead out of their split's folders, folders that could not be listed."""
    links = summary.skipped_links
    if links:
        noun = "link that leads" if len(links) == 1 else "links that lead"
        click.echo(f"Skipped {len(links)} {noun} nowhere (dangling, or a loop of links): {named(links)}", err=True)
    outside = summary.outside_links
    if outside:
        click.echo(
            f"{len(outside)} link(s) lead out of their split's folders: their images are indexed, but "
            f"`imgindex serve` does not send them: {named(outside)}",
            err=True,
        )
    unreadable = summary.unreadable_folders
    if unreadable:
        click.echo(
            f"Could not read {len(unreadable)} folder(s): their images already indexed are kept, new ones are "
            f"missed; give the scan read access and scan again: {named(unreadable)}",
            err=True,
        )


def named(paths: list[str]) -> str:
    """The first SKIPPED_SHOWN paths, and how many more."""
    more = len(paths) - SKIPPED_SHOWN
    return ", ".join(paths[:SKIPPED_SHOWN]) + (f" and {more} more" if more > 0 else "")


def open_index(db_path: str) -> Index:
    """The index for a command that writes (created when missing)."""
    return Index(db_path)


@contextmanager
def progress_bar(quiet: bool) -> Iterator[Progress | None]:
    """A progress callback drawing click's bar on a terminal (files, rate, ETA); None when quiet."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    bar: Any = None
    started = time.monotonic()

    def rate(done: int | None) -> str:
        return f"{(done or 0) / max(time.monotonic() - started, 1e-6):.0f} files/s"

    def advance(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total, label="Indexing", file=sys.stderr, show_pos=True, item_show_func=rate)
            bar.__enter__()
        bar.update(1, current_item=done)

    try:
        yield advance
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


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


def given(name: str) -> bool:
    """Whether the running command's option ``name`` was given (on the command line or by its
    environment variable), not left at its default."""
    source = click.get_current_context().get_parameter_source(name)
    return source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


@contextmanager
def read_index(db_path: str) -> Iterator[Index]:
    """The index opened read-only (nothing migrated or written) and read in one snapshot: every
    query of the command sees the same state, whatever a scan or watch commits meanwhile. A warning
    on stderr when its near-duplicate pairs are out of date."""
    with Index(db_path, readonly=True) as index, index.snapshot():
        if index.pairs_out_of_date:
            click.echo(stale_pairs_warning(db_path), err=True)
        yield index


def stale_pairs_warning(db_path: str) -> str:
    return (
        f"Warning: near-duplicate pairs in {db_path} are out of date (images were written since they were "
        f"computed, by another program or a scan still running); `imgindex upgrade --db {shlex.quote(db_path)}` "
        "or the next `imgindex scan` brings them up to date."
    )


@cli.command(name="duplicates")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
@click.option(
    "--rule",
    type=click.Choice(list(duplicates.RULES)),
    default="imgindex",
    show_default=True,
    help="imgindex: graded and verified (the stored verdict); datagradients: equal 64-bit dHash only, "
    "DataGradients' rule, for comparison.",
)
@click.option(
    "--max-distance",
    type=click.IntRange(0, duplicates.MAX_DISTANCE),
    default=duplicates.DEFAULT_MAX_DISTANCE,
    show_default=True,
    help="imgindex rule: largest dHash distance (bits of 64) of a candidate pair; another value than "
    "the default is computed now instead of read from the stored verdict.",
)
def duplicates_command(db_path: str, as_json: bool, rule: str, max_distance: int) -> None:
    """Duplicate groups, scenes and label conflicts, within each split and across each pair of splits.

    The default rule: a pair of images whose dHashes differ in at most --max-distance bits, whose
    256-bit dHash and brightness agree, is graded by where its pixels differ: byte-identical,
    pixel-identical, copy (re-encoded, resized, recoloured, lightly cropped) or similar scene (a
    different photo of the same scene: a lot changed in one place, little elsewhere). Duplicates
    are the first three; every two members of a group pass that check. Scenes and label conflicts
    (duplicates labelled two ways) are reported apart. The report and the served index read the
    same stored verdict.
    """
    if rule == "datagradients" and given("max_distance"):
        raise click.UsageError(
            "--max-distance is the imgindex rule's; --rule datagradients groups equal dHashes only: drop one of them."
        )
    with read_index(db_path) as index:
        if as_json:
            click.echo(json.dumps(index.duplicates(max_distance, rule), indent=2, ensure_ascii=False))
            return
        for line in index.describe_duplicates(max_distance, rule):
            click.echo(line)


def sql_error_message(exc: sqlite3.Error) -> str:
    if "readonly" in str(exc):
        return "imgindex sql only reads the index; `imgindex scan` is what changes it."
    if "not authorized" in str(exc) or "authorization denied" in str(exc):
        return "imgindex sql writes no file: attach other databases read-only, e.g. ATTACH 'file:other.db?mode=ro' AS other."
    return f'SQL error: {str(exc).rstrip(".")}. The tables and views are listed by `imgindex sql "select type, name from sqlite_master"`.'


@cli.command(name="sql")
@click.argument("sql")
@db_option
@click.option("--json", "json_rows", is_flag=True, help="Print rows as a JSON list of objects.")
@click.option("--csv", "csv_rows", is_flag=True, help="Print rows as CSV with a header.")
def sql_command(sql: str, db_path: str, json_rows: bool, csv_rows: bool) -> None:
    """Run a SQL query against the index, opened read-only (the file is never changed)."""
    if json_rows and csv_rows:
        raise click.UsageError("--json and --csv do not go together: give one of them.")
    if not sql.strip():
        raise click.UsageError('Give a query, e.g. imgindex sql "select split, count(*) from images group by split"')
    fmt = "json" if json_rows else "csv" if csv_rows else None
    with read_index(db_path) as index:
        try:
            columns, rows = index.execute(sql)
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
    """Write Report.pdf and summary.json (DataGradients' layout) from the index alone.

    The index is opened read-only. Only when --config gives ImageDuplicates a train_image_dir or
    valid_image_dir are those folders scanned into the index first, as DataGradients reads them.
    """
    from .report import ConfigError, ReportError
    from .report.config import load_config

    try:
        sections = load_config(config_path) if config_path else None
        if sections is not None:
            scan_duplicate_dirs(db_path, sections)
        with read_index(db_path) as index:
            outcome = index.report(out_dir=out_dir, title=title, sections=sections)
    except (ConfigError, ReportError) as exc:
        raise click.ClickException(str(exc)) from None
    for error in outcome.errors:
        click.echo(f"Feature failed: {error['title']}: {error['error']}", err=True)
    click.echo(outcome.message())


# ImageDuplicates' folder parameter, the split it fills unless the folder is scanned already, and
# the parameter naming that split for the feature
DUPLICATE_DIRS = (("train_image_dir", "train", "train_split"), ("valid_image_dir", "valid", "valid_split"))


def scan_duplicate_dirs(db_path: str, sections: list[Section]) -> None:
    """ImageDuplicates {train_image_dir, valid_image_dir}: those folders are scanned first, and the
    feature is told which splits they fill (train_split, valid_split)."""
    for request in (r for section in sections for r in section.features if r.name == "ImageDuplicates"):
        if any(request.params.get(key) for key, _, _ in DUPLICATE_DIRS):
            request.params.update(scan_named_folders(db_path, request.params))


def scan_named_folders(db_path: str, params: dict[str, Any]) -> dict[str, str]:
    """Scan the folders the parameters name (a folder scanned before refreshes its split, with the
    split's other folders) and return the splits they fill."""
    if not Path(db_path).is_file():
        raise store.NoIndexError(db_path)
    chosen: dict[str, str] = {}
    with open_index(db_path) as index:
        roots = {root: name for name, folders in index.split_folders().items() for root in folders}
        for key, default, split_param in DUPLICATE_DIRS:
            if not params.get(key):
                continue
            folder = Path(str(params[key])).expanduser().resolve()
            if not folder.is_dir():
                raise click.ClickException(
                    f"ImageDuplicates: {key} {folder} is not a folder; correct it in the --config file."
                )
            split = roots.get(str(folder), default)
            index.scan({split: [Path(r) for r, s in roots.items() if s == split] or [folder]})
            chosen[split_param] = split
    return chosen


@cli.command(name="watch")
@click.argument("folders", nargs=-1, metavar="SPLIT=DIR [SPLIT=DIR ...] | DATA.YAML | ROOT")
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
@max_pixels_option
@executor_option
def watch_command(
    folders: tuple[str, ...],
    db_path: str,
    workers: int | None,
    settle: float,
    batch_size: int,
    quiet: bool,
    max_pixels: int,
    executor: str | None,
    scheduler: str | None,
) -> None:
    """Scan each SPLIT=DIR (or a dataset's folders, as scan takes them), then keep the index
    current as files change, until Ctrl-C.

    Created, modified, moved and deleted images and label files reach the database in about a
    second; a file being written is read once it stops changing. Other programs can read the
    index meanwhile. Labels are read as `imgindex scan` read them (format and answers stored).
    """
    from .watch import split_roots

    splits, definition = scan_targets(folders)
    if definition is not None and definition.members:
        raise click.ClickException(
            f"{definition.source} lists images in .txt files; watch follows folders: scan it with `imgindex scan`, "
            "or watch the folders as SPLIT=DIR"
        )
    if definition is not None:
        click.echo(definition.describe())  # as scan says where the splits came from

    def report(batch: Any) -> None:
        if not quiet:
            labels = f", {batch.labels.read} label files read" if batch.labels and batch.labels.read else ""
            click.echo(
                f"{time.strftime('%H:%M:%S')} {batch.new} new, {batch.changed} changed, "
                f"{batch.removed} removed, {batch.errors} errors{labels}"
            )

    def ready(initial: Any) -> None:
        if not quiet:
            warn_skipped(initial)
            click.echo(f"Initial scan: {initial.line()}")
        names = ", ".join(f"{split}={stored_text(folder)}" for split, folder in split_roots(splits))
        click.echo(f"Watching {names} (Ctrl-C to stop)")

    with open_index(db_path) as index:
        try:  # labels are read as `imgindex scan` read them (format and answers stored)
            watcher = index.watcher(
                splits,
                ask=lambda missing: answer(missing, LabelOptions()),
                settle=settle,
                batch_size=batch_size,
                workers=workers,
                executor=chosen_executor(executor, scheduler),
                scheduler=scheduler,
                max_pixels=max_pixels,
                on_batch=report,
                on_ready=ready,
                on_busy=lambda message: click.echo(f"{time.strftime('%H:%M:%S')} {message}", err=True),
            )
        except LabelError as exc:
            raise click.ClickException(str(exc)) from None
    stop_on_signals(watcher.stop)
    try:
        click.echo(watcher.run().line())
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from None


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
@click.option(
    "--thumbnail-max-pixels",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_PIXELS,
    show_default=True,
    help="Largest decoded image (pixels, after JPEG's reduced decode) made into a thumbnail; larger ones get a placeholder (HTTP 413).",
)
@click.option(
    "--thumbnail-concurrency",
    type=click.IntRange(min=1),
    default=DEFAULT_CONCURRENT,
    show_default=True,
    help="Thumbnails decoded at once; more requests wait their turn.",
)
@click.option(
    "--allow-reviews",
    is_flag=True,
    help="Let the review page record a reviewer's verdicts (not a duplicate, duplicate, ignore) in the index; "
    "off by default (read only). Bind to 127.0.0.1 (the default) unless others should.",
)
@click.option(
    "--debug-pages",
    is_flag=True,
    help="Also serve Datasette's pages about the server (/-/databases, /-/threads, /-/versions, /-/settings, ...), off by default.",
)
def serve_command(
    db_path: str,
    host: str,
    port: int,
    thumbnail_max_pixels: int,
    thumbnail_concurrency: int,
    allow_reviews: bool,
    debug_pages: bool,
) -> None:
    """Browse the index in Datasette: thumbnails, duplicate and leakage groups, the images of each
    quality flag, canned queries.

    The index is only read: Datasette opens it read-only; with --allow-reviews the review page's
    buttons (CSRF-protected forms) record reviewers' verdicts, as `imgindex review` does. Only files
    inside the folders each split was scanned from are served.
    """
    import asyncio

    import uvicorn
    from datasette.app import Datasette

    with read_index(db_path):  # an index of this version; Datasette reads it through mode=ro connections
        pass
    require_free_port(host, port)
    options = {
        "debug_pages": debug_pages,
        "thumbnail_max_pixels": thumbnail_max_pixels,
        "thumbnail_concurrency": thumbnail_concurrency,
        "allow_reviews": allow_reviews,
    }
    file = [db_path]  # read as unchanging on read-only media, as the other read commands do
    files, immutables = ([], file) if store.read_as_unchanging(Path(db_path)) else (file, [])
    datasette = Datasette(files, immutables=immutables, metadata={"plugins": {"imgindex": options}})
    asyncio.run(datasette.invoke_startup())
    name = next(n for n in datasette.databases if n != "_internal")
    click.echo(f"Serving {db_path} at http://{host}:{port}/{name} (Ctrl-C to stop)")
    uvicorn.run(datasette.app(), host=host, port=port, log_level="warning", lifespan="on")


def require_free_port(host: str, port: int) -> None:
    """Refuse, in one line, a port another program already listens on."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; give another --port"
        ) from None


class CheckMisuse(click.ClickException):
    """Misuse of `imgindex check` (exit status 2, so that CI tells it from a failed rule)."""

    exit_code = 2


def parse_rule_limits(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    try:
        return name_value_pairs(
            values, "RULE=LIMIT, e.g. --rule leakage=0, --rule duplicates=2% or --rule unreadable=off"
        )
    except ValueError as exc:
        raise CheckMisuse(f"--rule {exc}") from None


def write_atomically(path: Path, content: str) -> None:
    """The file whole or not at all: written beside (a name of this process's own), flushed to
    disk, then renamed over."""
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        with open(part, "w", encoding="utf-8") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(part, path)
    except OSError as exc:
        with contextlib.suppress(OSError):  # the part may not exist, nor its folder
            part.unlink()
        raise CheckMisuse(f"cannot write {path}: {exc.strerror or exc}") from None


@cli.command(name="check")
@db_option
@click.option(
    "--rule",
    "rule_limits",
    multiple=True,
    metavar="RULE=LIMIT",
    callback=parse_rule_limits,
    help="A rule's limit: a count of findings (0), a share (2%) or off. Repeatable; overrides the config.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Limits from this file: a .toml with [tool.imgindex.check], or a YAML mapping "
    "[default: ./pyproject.toml's [tool.imgindex.check], if any].",
)
@click.option(
    "--baseline",
    "baseline_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Only findings that this baseline (from --write-baseline) does not hold count.",
)
@click.option(
    "--write-baseline",
    "write_baseline",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every finding to this file, to pass --baseline later, and exit 0.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option(
    "--junit",
    "junit_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a JUnit XML file: a test case per rule.",
)
@click.option(
    "--examples", type=click.IntRange(min=0), default=5, show_default=True, help="Findings shown per failed rule."
)
def check_command(
    db_path: str,
    rule_limits: dict[str, str],
    config_path: Path | None,
    baseline_path: Path | None,
    write_baseline: Path | None,
    as_json: bool,
    junit_path: Path | None,
    examples: int,
) -> None:
    """Hold the index to rules, for CI: exit 0 when every rule holds, 1 when one fails, 2 on misuse.

    Rules (limit by default): leakage (0: no duplicate in two splits), duplicates (0, within a
    split), label-conflicts (0), unreadable (0), label-<kind> for each kind of label problem, and
    quality-<flag> for each image-quality flag (off). The index is only read: scan first, e.g.
    `imgindex scan train=... val=... && imgindex check --junit check.xml`.
    """
    try:
        config = check.load_config(config_path, Path.cwd())
        limits = {**config.limits, **rule_limits}
        check.limits(limits)  # every name and limit checked before the index is opened
        baseline_file = baseline_path or config.baseline
        known = check.read_baseline(baseline_file) if baseline_file and not write_baseline else {}
    except check.CheckError as exc:
        raise CheckMisuse(str(exc)) from None
    try:
        with read_index(db_path) as index:
            result = index.check(limits, known)
    except store.IndexStateError as exc:
        raise CheckMisuse(str(exc)) from None
    if junit_path:
        write_atomically(junit_path, check_outputs.junit(result))
    if write_baseline:
        write_atomically(write_baseline, json.dumps(result.baseline(), indent=1, ensure_ascii=False) + "\n")
    if as_json:
        click.echo(json.dumps(result.as_json(), indent=2, ensure_ascii=False))
    else:
        for line in check_outputs.text(result, examples):
            click.echo(line)
    if write_baseline:
        total = sum(len(f) for f in result.all_findings.values())
        click.echo(
            f"Baseline of {total} finding(s) written to {write_baseline}: pass --baseline {shlex.quote(str(write_baseline))} so that only new findings count.",
            err=True,
        )
        return
    if not result.passed:
        sys.exit(1)


@cli.command(name="export")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@db_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(export.EXPORTERS)),
    default="yolo",
    show_default=True,
    help="yolo: data.yaml and .txt image lists; coco: per split, links and a filtered "
    "_annotations.coco.json; voc: ImageSets/Main lists; list: only the removal list.",
)
@click.option(
    "--leaks",
    type=click.Choice(list(export.LEAK_POLICIES)),
    default="train",
    show_default=True,
    help="Where a group of copies in several splits goes: the training split, the split with most "
    "of them, or nowhere (drop).",
)
@click.option("--train-split", help="The training split [default: the split named train or training].")
@click.option(
    "--keep",
    type=click.Choice(list(export.KEEP_POLICIES)),
    default="largest",
    show_default=True,
    help="Which copy of a group stays, a labelled one always first: the largest picture (then fewest label "
    "problems), or the one with fewest label problems (then the largest).",
)
@click.option("--dry-run", is_flag=True, help="Print what would change per split; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the decisions as JSON.")
def export_command(
    out: Path, db_path: str, fmt: str, leaks: str, train_split: str | None, keep: str, dry_run: bool, as_json: bool
) -> None:
    """Write a leak-free, de-duplicated dataset definition into OUT (a new folder), without touching
    the original files.

    Each group of copies (the stored verdict, as `imgindex duplicates` shows it) spanning splits
    goes to one split (--leaks), and within a split one copy stays (--keep): a labelled copy first,
    then by default the largest, then the one with fewest label problems. OUT gets the definition (--format) and removed.csv / removed.json, the
    reason for every file left out. Scanning OUT and checking it passes the leakage and duplicate
    rules.
    """
    with read_index(db_path) as index:
        try:
            result = index.export(out, fmt, leaks, train_split, dry_run, keep)
        except export.ExportError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            raise click.ClickException(f"cannot write {out}: {exc.strerror or exc}") from None
    if as_json:
        click.echo(json.dumps(result.as_json(), indent=2, ensure_ascii=False))
        return
    for line in result.lines():
        click.echo(line)


@cli.command(name="review")
@click.argument("verdict", type=click.Choice(list(reviews.VERDICTS)), required=False)
@click.argument("files", nargs=-1, metavar="[SPLIT:PATH ...]")
@db_option
@click.option("--note", help="Why, kept with the review.")
@click.option("--list", "show", is_flag=True, help="List the reviews, and whether each still applies.")
@click.option("--undo", type=int, metavar="ID", help="Take back the review with this id (from --list).")
def review_command(
    verdict: str | None, files: tuple[str, ...], db_path: str, note: str | None, show: bool, undo: int | None
) -> None:
    """Record a reviewer's verdict: not-duplicate or duplicate for two or more files (every pair of
    them), ignore for files. Files are SPLIT:PATH as `imgindex check` prints them.

    The verdict every output reads applies the reviews at once: check, export, the report and the
    served pages. A review lasts while its files are indexed unchanged (a re-scan keeps it; an
    edited file drops it).
    """
    if show:
        with read_index(db_path) as index:
            rows = index.list_reviews()
        for r in rows:
            state = "applies" if r.applies else f"does not apply: {r.why_not}"
            note_text = f" ({r.note})" if r.note else ""
            click.echo(f"{r.id:>4}  {r.verdict:<13} {' '.join(r.files)}  [{state}; {r.created_at}]{note_text}")
        if not rows:
            click.echo("No reviews.")
        return
    with open_index(db_path) as index:
        try:
            if undo is not None:
                if not index.undo_review(undo):
                    raise click.ClickException(f"no review {undo}: `imgindex review --list` shows their ids")
                click.echo(f"Review {undo} taken back; the verdict is recomputed.")
                return
            if verdict is None:
                raise click.UsageError(
                    "Give a verdict (not-duplicate, duplicate or ignore) and files, or --list / --undo ID"
                )
            ids = index.review(verdict, list(files), note=note)
        except reviews.ReviewError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(
        f"Recorded {verdict} for {' '.join(files)} (review {', '.join(map(str, ids))}); the verdict is recomputed."
    )


@cli.command(name="quality")
@db_option
@click.option(
    "--threshold",
    "thresholds",
    multiple=True,
    metavar="FLAG=VALUE",
    callback=parse_threshold,
    help="Judge every image again with this threshold (from the stored measures; no image is opened) "
    "and keep it for later scans; FLAG=default restores the default. Repeatable.",
)
@click.option(
    "--flag",
    "flags",
    multiple=True,
    type=click.Choice([flag.name for flag in quality.FLAGS]),
    help="Show only these flags. Repeatable.",
)
@click.option(
    "--limit", type=click.IntRange(min=0), default=10, show_default=True, help="Images listed per flag (0: all)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the rule, the counts and every flagged image as JSON.")
def quality_command(
    db_path: str, thresholds: dict[str, str], flags: tuple[str, ...], limit: int, as_json: bool
) -> None:
    """Image quality: dark, light (overexposed), blurry, low-information, odd aspect ratio, odd size,
    grayscale and outlier images, per split.

    Every scan measures each image in its one decode; the flags are judged from those measures
    with the thresholds shown (README: "Image quality"). --threshold changes one and judges again
    without opening an image; the report, the served index and `imgindex sql` (view `quality`)
    read the same stored flags.
    """
    if thresholds:
        with Index(db_path) as index:
            found = index.quality(thresholds)
    else:
        with read_index(db_path) as index:
            found = index.quality()
    if as_json:
        click.echo(json.dumps(found.as_json(flags), indent=2, ensure_ascii=False))
        return
    for line in quality_text.describe(found, flags, limit):
        click.echo(line)


@cli.command(name="upgrade")
@db_option
def upgrade_command(db_path: str) -> None:
    """Bring an index written by an older imgindex up to date.

    Applies this version's schema changes, re-creates the views and recomputes the near-duplicate
    pairs of images written by other programs. The read commands (sql, duplicates, report, serve)
    never change the index and ask for this when it is needed; scan and watch do it on their way.
    """
    pending, recomputed = Index.upgrade(db_path)
    schema = f"schema {', '.join(pending)} applied" if pending else "schema already current"
    click.echo(
        f"Upgraded {db_path}: {schema}, views re-created, near-duplicate pairs of {recomputed} images recomputed."
    )
