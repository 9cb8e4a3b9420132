"""Publishing a report's files so that a reader never sees half of one, nor half a pair.

A run writes Report.pdf and summary.json into an archive folder marked incomplete
(``archive_<time>.<pid>.incomplete``), each flushed to disk, and renames it to its final name
(``archive_<time>``), complete. Then, where the system has symbolic links, one ``os.replace``
publishes both files at once: the link ``current`` is switched to the new archive, and the
top-level Report.pdf and summary.json are links to ``current/Report.pdf`` and
``current/summary.json`` (made once; an index's first report, or one after reports written as
plain files, puts them in place Report.pdf first). The top-level pair is therefore always the
previous run's or the new run's, whenever a run is killed.

Where links cannot be made (Windows without the right to), the files are copied and replaced one
after the other, in this order:

1. Report.pdf and summary.json are written in that folder, then copied beside the top-level files
   under temporary names (``.Report.pdf.<pid>.tmp``, then ``.summary.json.<pid>.tmp``), each
   flushed to disk;
2. the archive folder is renamed to its final name (``archive_<time>``), complete;
3. ``os.replace`` puts Report.pdf in place, then summary.json, last.

Each top-level file is therefore always a complete file, of the previous run or of the new one,
and summary.json is never newer than the Report.pdf beside it. A run killed between the two
replaces leaves a new Report.pdf beside the previous summary.json, and its summary.json waiting
under its temporary name: the next run finishes that replace before anything else (``recover``),
so the pair is matched again, and removes the temporary files and incomplete folders of runs
that are no longer running.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

PDF = "Report.pdf"
SUMMARY = "summary.json"
OUTPUTS = (PDF, SUMMARY)  # the order of every step: Report.pdf first, summary.json last
CURRENT = "current"  # the link to the archive the top-level files show
INCOMPLETE = ".incomplete"

_TEMP = re.compile(r"^\.(Report\.pdf|summary\.json|current)\.(\d+)\.tmp$")
_STAGING = re.compile(r"^archive_.*\.(\d+)\.incomplete$")


def temp_path(directory: Path, name: str, pid: int | None = None) -> Path:
    return directory / f".{name}.{os.getpid() if pid is None else pid}.tmp"


def staging_folder(directory: Path, stamp: str) -> Path:
    """A new archive folder marked incomplete, for this run alone."""
    folder = directory / f"archive_{stamp}.{os.getpid()}{INCOMPLETE}"
    if folder.exists():  # a folder left by an earlier process of the same id
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def publish(directory: Path, staging: Path, stamp: str) -> Path:
    """Put the complete files of ``staging`` in place (see the module's order); the archive's final path."""
    if links_supported(directory):
        archive = _complete(staging, directory, f"archive_{stamp}")
        _link(directory, CURRENT, archive.name)  # both files switch here
        for name in OUTPUTS:
            _link(directory, name, f"{CURRENT}/{name}")
        _sync_folder(directory)
        return archive
    return _publish_copies(directory, staging, stamp)


def links_supported(directory: Path) -> bool:
    """Whether symbolic links can be made in ``directory`` (tried once per folder and process)."""
    if directory not in _LINKS:
        probe = temp_path(directory, CURRENT)
        try:
            with contextlib.suppress(FileNotFoundError):
                probe.unlink()
            os.symlink(".", probe)
            probe.unlink()
            _LINKS[directory] = True
        except (OSError, NotImplementedError):
            _LINKS[directory] = False
    return _LINKS[directory]


_LINKS: dict[Path, bool] = {}


def _link(directory: Path, name: str, target: str) -> None:
    """``directory/name`` made a link to ``target`` by one rename (nothing done when it is one)."""
    path = directory / name
    if path.is_symlink() and os.readlink(path) == target:
        return
    temp = temp_path(directory, name)
    with contextlib.suppress(FileNotFoundError):
        temp.unlink()
    os.symlink(target, temp)
    os.replace(temp, path)


def _publish_copies(directory: Path, staging: Path, stamp: str) -> Path:
    """The files copied beside the top level, then replaced one after the other (no links)."""
    temps = [temp_path(directory, name) for name in OUTPUTS]
    for name, temp in zip(OUTPUTS, temps):
        _copy_synced(staging / name, temp)
    archive = _complete(staging, directory, f"archive_{stamp}")
    for name, temp in zip(OUTPUTS, temps):
        os.replace(temp, directory / name)
    _sync_folder(directory)
    return archive


def write_synced(path: Path, write: Callable[[Path], None]) -> None:
    """``write(path)``, then the file flushed to disk."""
    write(path)
    with open(path, "rb") as file:
        os.fsync(file.fileno())


def recover(directory: Path) -> None:
    """Finish or drop what runs no longer running left in ``directory``: a summary.json whose
    Report.pdf was already put in place is put in place too; other temporary files and
    incomplete archive folders are removed."""
    if not directory.is_dir():
        return
    left: dict[int, dict[str, Path]] = {}  # pid -> output name -> its temporary file
    for entry in directory.iterdir():
        staging = _STAGING.match(entry.name)
        if staging and not _running(int(staging.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
        temp = _TEMP.match(entry.name)
        if temp and not _running(int(temp.group(2))):
            left.setdefault(int(temp.group(2)), {})[temp.group(1)] = entry
    for temps in left.values():
        if _waiting_copy(directory, temps):  # a copy left between the two replaces
            os.replace(temps[SUMMARY], directory / SUMMARY)
        for path in temps.values():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    if (directory / CURRENT).is_symlink() and (directory / PDF).is_symlink():
        for name in OUTPUTS:  # a first switch to links killed before summary.json was linked
            _link(directory, name, f"{CURRENT}/{name}")


def _waiting_copy(directory: Path, temps: dict[str, Path]) -> bool:
    """Whether a dead run's copied summary.json waits to be put in place beside its Report.pdf."""
    summary_temp = temps.get(SUMMARY)
    if summary_temp is None or summary_temp.is_symlink() or PDF in temps:
        return False
    return _pdf_still_its_own(directory, summary_temp)


def _pdf_still_its_own(directory: Path, summary_temp: Path) -> bool:
    """Whether the top-level Report.pdf is still the one put in place by the run that left
    ``summary_temp`` (its PDF's temporary file is gone): not newer than that summary.json, which
    was written after its PDF."""
    try:
        return (directory / PDF).stat().st_mtime_ns <= summary_temp.stat().st_mtime_ns
    except FileNotFoundError:
        return False


def _running(pid: int) -> bool:
    """Whether process ``pid`` may still be running (always, where that cannot be asked safely:
    on Windows os.kill ends the process)."""
    if pid == os.getpid() or os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _copy_synced(source: Path, target: Path) -> None:
    with open(source, "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
        dst.flush()
        os.fsync(dst.fileno())


def _complete(staging: Path, directory: Path, name: str) -> Path:
    """Rename the staging folder to ``name`` (``name-2``, ... when a run of the same second has it)."""
    for number in range(1, 1000):
        archive = directory / (name if number == 1 else f"{name}-{number}")
        if archive.exists():
            continue
        try:
            os.rename(staging, archive)
        except OSError:  # created meanwhile by a run of the same second
            continue
        return archive
    raise OSError(f"no free archive folder name for {name} in {directory}")


def _sync_folder(directory: Path) -> None:
    """Flush the folder's entries (the renames) to disk where the system allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
