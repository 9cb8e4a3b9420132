"""`imgindex report` killed at any moment leaves the top-level Report.pdf and summary.json complete:
the previous run's pair or the new one's, switched at once through the link `current`, never a
truncated file; where links cannot be made, files replaced one after the other (summary.json
never newer than Report.pdf); the next run finishes or removes what the killed one left."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA, ROOT, invoke

from imgindex import Index
from imgindex.report import outputs
from imgindex.report import summary as summary_module
from imgindex.report.build import build_report
from imgindex.scan import scan

KILLED = 77
START = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("atomic")
    train, val = root / "train", root / "val"
    shutil.copytree(DATA / "coco8" / "images" / "train", train)
    shutil.copytree(DATA / "coco8" / "images" / "val", val)
    db = root / "index.db"
    scan(db, {"train": [train], "val": [val]}, workers=1)
    return db


def pair(directory: Path) -> tuple[str, str]:
    """The timestamps of the top-level summary.json and Report.pdf, each checked complete."""
    doc = json.loads((directory / "summary.json").read_text(encoding="utf-8"))
    pdf = (directory / "Report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    subject = re.search(rb"/Subject \(imgindex report ([^)]*)\)", pdf)
    assert subject is not None
    return doc["metadata"]["timestamp"], subject.group(1).decode()


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith((".tmp", outputs.INCOMPLETE)))


def archives(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("archive_*") if not p.name.endswith(outputs.INCOMPLETE))


def report_dying_at(index: Path, out: Path, now: datetime, patch: Callable[[], None]) -> int:
    """build_report in a forked process that ``patch`` makes die (os._exit, as a kill) at one moment."""
    pid = os.fork()
    if pid == 0:  # the child: no cleanup of any kind runs after os._exit
        code = 1
        try:
            patch()
            build_report(index, out, title="t", now=now)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def die_on_call(owner: Any, name: str, nth: int = 0, partial: bool = False) -> Callable[[], None]:
    """A patch making owner.name die on its nth call (0 = first); with ``partial``, after writing
    half a file at the call's path-like argument (the last one)."""

    def patch() -> None:
        real = getattr(owner, name)
        calls = [0]

        def dying(*args: Any, **kwargs: Any) -> Any:
            if calls[0] == nth:
                if partial:
                    target = [a for a in args if isinstance(a, Path)][-1]
                    target.write_bytes(b'%PDF-1.4\n{"half": ')
                os._exit(KILLED)
            calls[0] += 1
            return real(*args, **kwargs)

        setattr(owner, name, dying)

    return patch


class DyingOs:
    """The os module as outputs sees it, with replace dying on its nth call."""

    def __init__(self, nth: int) -> None:
        self.nth, self.calls = nth, 0

    def replace(self, *args: Any) -> None:
        if self.calls == self.nth:
            os._exit(KILLED)
        self.calls += 1
        os.replace(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


def die_on_replace(nth: int) -> Callable[[], None]:
    def patch() -> None:
        outputs.os = DyingOs(nth)  # type: ignore[assignment]

    return patch


def without_links() -> None:
    """Publishing as on a system without symbolic links: copies replaced one after the other."""
    outputs.links_supported = lambda directory: False  # type: ignore[assignment]


def then(*patches: Callable[[], None]) -> Callable[[], None]:
    def patch() -> None:
        for one in patches:
            one()

    return patch


LINKED = {
    "while writing the PDF": die_on_call(outputs, "write_synced", 0, partial=True),
    "while writing summary.json": die_on_call(summary_module, "write", 0, partial=True),
    "before completing the archive": die_on_call(outputs, "_complete", 0),
    "before switching current": die_on_replace(0),
    "after the switch": die_on_call(outputs, "_sync_folder", 0),
}


@pytest.mark.parametrize("moment", list(LINKED))
def test_a_report_killed_at_each_step_leaves_the_previous_pair_or_the_new(
    index: Path, tmp_path: Path, moment: str
) -> None:
    out = tmp_path / "logs"
    directory = build_report(index, out, title="t", now=START).directory
    assert (directory / outputs.PDF).is_symlink() and (directory / outputs.SUMMARY).is_symlink()
    previous = START.isoformat(timespec="seconds")
    later = START + timedelta(minutes=1)
    new = later.isoformat(timespec="seconds")
    assert report_dying_at(index, out, later, LINKED[moment]) == KILLED
    expected = (new, new) if moment == "after the switch" else (previous, previous)
    assert pair(directory) == expected
    outputs.recover(directory)
    assert leftovers(directory) == [] and pair(directory) == expected
    latest = START + timedelta(minutes=2)
    build_report(index, out, title="t", now=latest)
    assert pair(directory) == (latest.isoformat(timespec="seconds"),) * 2


def test_reports_written_as_plain_files_become_links_in_order(index: Path, tmp_path: Path) -> None:
    """An index whose last report wrote plain files: the next run puts the links in place,
    Report.pdf first; killed in between, the pair is the new PDF and the previous summary.json
    (never a newer summary.json), and the run after completes it."""
    out = tmp_path / "logs"
    assert report_dying_at(index, out, START, then(without_links, lambda: None)) == 0
    directory = out / "t"
    assert not (directory / outputs.PDF).is_symlink()
    previous, later = START.isoformat(timespec="seconds"), START + timedelta(minutes=1)
    assert report_dying_at(index, out, later, die_on_replace(2)) == KILLED  # current, Report.pdf, then...
    assert pair(directory) == (previous, later.isoformat(timespec="seconds"))
    outputs.recover(directory)
    assert pair(directory) == (later.isoformat(timespec="seconds"),) * 2
    assert (directory / outputs.SUMMARY).is_symlink() and leftovers(directory) == []


MOMENTS = {
    "while writing the PDF": die_on_call(outputs, "write_synced", 0, partial=True),
    "while writing summary.json": die_on_call(summary_module, "write", 0, partial=True),
    "while copying the PDF beside the top level": die_on_call(outputs, "_copy_synced", 0, partial=True),
    "while copying summary.json beside the top level": die_on_call(outputs, "_copy_synced", 1, partial=True),
    "before completing the archive": die_on_call(outputs, "_complete", 0),
    "before replacing Report.pdf": die_on_replace(0),
    "between the two replaces": die_on_replace(1),
    "after both replaces": die_on_call(outputs, "_sync_folder", 0),
}


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_without_links_a_report_killed_at_each_step_leaves_a_complete_pair(
    index: Path, tmp_path: Path, moment: str
) -> None:
    out = tmp_path / "logs"
    assert report_dying_at(index, out, START, then(without_links, lambda: None)) == 0
    directory = out / "t"
    previous = START.isoformat(timespec="seconds")
    assert pair(directory) == (previous, previous)
    later = START + timedelta(minutes=1)
    new = later.isoformat(timespec="seconds")

    assert report_dying_at(index, out, later, then(without_links, MOMENTS[moment])) == KILLED
    summary_stamp, pdf_stamp = pair(directory)  # both complete, whatever the moment
    if moment == "between the two replaces":
        assert (summary_stamp, pdf_stamp) == (previous, new)  # summary.json is never the newer
    elif moment == "after both replaces":
        assert (summary_stamp, pdf_stamp) == (new, new)
    else:
        assert (summary_stamp, pdf_stamp) == (previous, previous)
    if moment in ("before replacing Report.pdf", "between the two replaces", "after both replaces"):
        assert f"archive_{later:%Y%m%d-%H%M%S}" in archives(directory)  # the archive was complete first
    else:
        assert archives(directory) == [f"archive_{START:%Y%m%d-%H%M%S}"]

    outputs.recover(directory)  # what the next run does first
    assert leftovers(directory) == []
    expected = (new, new) if moment in ("between the two replaces", "after both replaces") else (previous, previous)
    assert pair(directory) == expected

    latest = START + timedelta(minutes=2)
    assert report_dying_at(index, out, latest, then(without_links, lambda: None)) == 0
    assert pair(directory) == (latest.isoformat(timespec="seconds"),) * 2
    assert leftovers(directory) == []


def test_a_newer_pair_is_never_overwritten_by_a_stale_summary(index: Path, tmp_path: Path) -> None:
    """A summary.json left waiting by a killed run is put in place only if the Report.pdf beside it
    is still that run's."""
    out = tmp_path / "logs"
    assert report_dying_at(index, out, START, then(without_links, lambda: None)) == 0
    directory = out / "t"
    later = START + timedelta(minutes=1)
    assert report_dying_at(index, out, later, then(without_links, MOMENTS["between the two replaces"])) == KILLED
    waiting = [p for p in directory.iterdir() if p.name.startswith(".summary.json.")]
    assert len(waiting) == 1
    moved = tmp_path / "waiting"
    waiting[0].rename(moved)  # keep it aside while a newer run publishes
    latest = START + timedelta(minutes=2)
    assert report_dying_at(index, out, latest, then(without_links, lambda: None)) == 0
    moved.rename(waiting[0])
    outputs.recover(directory)
    assert pair(directory) == (latest.isoformat(timespec="seconds"),) * 2
    assert leftovers(directory) == []


def test_a_live_run_keeps_its_files(tmp_path: Path) -> None:
    directory = tmp_path / "t"
    directory.mkdir()
    mine = outputs.temp_path(directory, outputs.SUMMARY)
    mine.write_text("{}")
    staging = outputs.staging_folder(directory, "20260101-000000")
    outputs.recover(directory)
    assert mine.exists() and staging.exists()


def test_ctrl_c_ends_a_report_with_status_130_and_its_files_whole(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "logs"
    invoke("report", "--db", str(index), "--out", str(out), "--title", "t")
    before = pair(out / "t")

    def interrupted(self: object, **kw: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Index, "report", interrupted)
    result = invoke("report", "--db", str(index), "--out", str(out), "--title", "t", ok=False)
    assert result.exit_code == 130 and "Interrupted." in result.output and "Aborted" not in result.output
    assert pair(out / "t") == before


def test_imgindex_report_killed_at_random_moments(index: Path, tmp_path: Path) -> None:
    """The real command, SIGKILLed after random delays spread over its run time."""
    out = tmp_path / "logs"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "imgindex", "report", "--db", str(index), "--out", str(out), "--title", "t"]
    started = time.monotonic()
    subprocess.run(command, env=env, check=True, capture_output=True)
    run_time = time.monotonic() - started
    directory = out / "t"
    stamps = pair(directory)
    assert stamps[0] == stamps[1]
    rng = random.Random(6266)
    for fraction in sorted(rng.uniform(0.4, 1.05) for _ in range(6)):
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(fraction * run_time)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        summary_stamp, pdf_stamp = pair(directory)  # complete, whenever the kill came
        assert summary_stamp == pdf_stamp  # one pair: switched at once
    outputs.recover(directory)
    assert pair(directory)[0] == pair(directory)[1]
    assert leftovers(directory) == []
    subprocess.run(command, env=env, check=True, capture_output=True)
    assert pair(directory)[0] == pair(directory)[1] and leftovers(directory) == []
    assert all(
        sorted(p.name for p in (directory / a).iterdir()) == ["Report.pdf", "summary.json"] for a in archives(directory)
    )
