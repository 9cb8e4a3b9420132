"""Many commands on one index at once, for a while; then the index must equal a clean scan.

Against one database, for --seconds: `imgindex watch` (a real process) follows two split folders
while a thread adds, changes and removes images there and in a third split (copies of the real
images in tests/data and variants of them made with Pillow: resized, brightened, cropped,
re-encoded) and their YOLO label files; meanwhile `imgindex scan` of the three splits runs again
and again, in --scanners processes at once (the third split only scans write, so every scan has
work), `imgindex report` and `imgindex duplicates
--json` read, and an `imgindex serve` process answers Datasette requests. Then one last change
must reach the index through the watch, which must still be running; the watch stops, a last scan
runs, and the index is compared with a clean scan of the same files (imgindex.consistency: images,
label files, labels, label problems, classes, near pairs and the verdict, by path).

    python scripts/soak.py --seconds 180

prints, at the end, "errors seen: N" (commands that exited non-zero or printed a traceback, HTTP
errors, a watch that died or lost the last change) and "rows that differ from a clean scan: N";
both should be 0, and the script exits 1 otherwise. tests/test_concurrency.py runs the same for 15 s.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageEnhance

from imgindex import consistency

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
SOURCES = (  # (images folder, labels folder or None)
    (DATA / "coco128_sample" / "images" / "train2017", DATA / "coco128_sample" / "labels" / "train2017"),
    (DATA / "coco8" / "images" / "train", DATA / "coco8" / "labels" / "train"),
    (DATA / "coco8" / "images" / "val", DATA / "coco8" / "labels" / "val"),
    (DATA / "imagehash", None),
)
WATCHED = ("train", "val")  # followed by the watch and scanned
SPLITS = (*WATCHED, "extra")  # extra: scanned only, so that every scan has work to write
MAX_FILES = 40  # images per split the changes keep to
REPORT_EVERY = 20.0  # seconds from the end of a report to the start of the next


@dataclass
class Outcome:
    errors: list[str] = field(default_factory=list)  # one line each
    differences: list[str] = field(default_factory=list)  # rows of one index and not the other, by table
    runs: Counter[str] = field(default_factory=Counter)  # commands, requests and file changes done
    busy: int = 0  # batches the watch had to apply again (it said so on stderr)
    last_change_seconds: float = 0.0  # from the last change to its row in the index, through the watch


class Soak:
    def __init__(
        self,
        work: Path,
        seconds: float,
        seed: int = 0,
        scanners: int = 2,
        log: Callable[[str], None] = print,
        extra: Path | None = None,
    ) -> None:
        self.work, self.seconds, self.scanners, self.log, self.extra = work, seconds, scanners, log, extra
        self.random = random.Random(seed)
        self.db = work / "index.db"
        self.data = work / "data"
        self.outcome = Outcome()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.sources = [found for folder, labels in SOURCES for found in _images(folder, labels)]
        self.serial = 0

    # ------------------------------------------------------------ the run

    def run(self) -> Outcome:
        self._layout()
        watch = self._start("watch", "--settle", "0.2", *self._split_args(WATCHED))
        threads = [  # from the watch's start: its initial scan has company
            threading.Thread(target=self._loop, args=(self._scan,), name=f"scans {n + 1}") for n in range(self.scanners)
        ]
        for thread in threads:
            thread.start()
        serve: subprocess.Popen[str] | None = None
        try:
            self._wait_for_output(watch, "Watching ", 120)
            port = _free_port()
            serve = self._start("serve", "--port", str(port))
            base = f"http://127.0.0.1:{port}"
            self._wait_http(f"{base}/index.json", 60)
            threads += [
                threading.Thread(target=self._loop, args=(self._change_files,), name="files"),
                threading.Thread(target=self._loop, args=(lambda: self._read(base),), name="reads"),
                threading.Thread(target=self._loop, args=(self._report,), name="reports"),
            ]
            for thread in threads[self.scanners :]:
                thread.start()
            time.sleep(self.seconds)
        finally:
            self.stop.set()
            for thread in threads:
                thread.join()
        try:
            self._last_change(watch)
        finally:
            self._stop(watch, "watch", expect="Stopped after")
            if serve is not None:
                self._stop(serve, "serve")
        self._command("scan", "-q", "--workers", "1", *self._split_args())
        clean = self.work / "clean.db"
        self._command("scan", "-q", "--workers", "1", *self._split_args(), db=clean)
        self.outcome.differences = compare(self.db, clean)
        return self.outcome

    def _layout(self) -> None:
        for split in SPLITS:
            (self.data / "images" / split).mkdir(parents=True)
            (self.data / "labels" / split).mkdir(parents=True)
            for _ in range(12):
                self._add_copy(split)
        if self.extra is not None:  # a larger set copied into the third split: a verdict that takes longer
            for n, image in enumerate(sorted(p for p in self.extra.rglob("*") if p.suffix.lower() in (".jpg", ".png"))):
                # copied, never linked: files of the split are changed in place
                shutil.copyfile(image, self.data / "images" / "extra" / f"extra-{n:05d}{image.suffix.lower()}")

    def _split_args(self, splits: tuple[str, ...] = SPLITS) -> list[str]:
        return [f"{split}={self.data / 'images' / split}" for split in splits]

    def _loop(self, step: Callable[[], None]) -> None:
        while not self.stop.is_set():
            try:
                step()
            except Exception as err:  # a bug of this script, not of imgindex: reported all the same
                self._error(f"{threading.current_thread().name}: {type(err).__name__}: {err}")

    def _error(self, line: str) -> None:
        with self.lock:
            self.outcome.errors.append(line)
        self.log(f"ERROR {line}")

    def _count(self, what: str) -> None:
        with self.lock:
            self.outcome.runs[what] += 1

    # ------------------------------------------------------------ commands

    def _env(self) -> dict[str, str]:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("IMGINDEX_DB", None)
        return env

    def _start(self, command: str, *args: str) -> subprocess.Popen[str]:
        out = open(self.work / f"{command}.out", "w")  # noqa: SIM115 -- the process keeps it open
        err = open(self.work / f"{command}.err", "w")  # noqa: SIM115
        return subprocess.Popen(
            [sys.executable, "-m", "imgindex", command, "--db", str(self.db), *args],
            stdout=out,
            stderr=err,
            text=True,
            env=self._env(),
        )

    def _command(self, command: str, *args: str, db: Path | None = None) -> str:
        """Run one command to its end; its stdout. Non-zero exit or a traceback is an error."""
        proc = subprocess.run(
            [sys.executable, "-m", "imgindex", command, "--db", str(db or self.db), *args],
            capture_output=True,
            text=True,
            env=self._env(),
            timeout=300,
        )
        self._count(command)
        if proc.returncode != 0 or "Traceback" in proc.stderr:
            last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            self._error(f"imgindex {command} exited {proc.returncode}: {last}")
        for line in proc.stderr.splitlines():
            if line.startswith("Feature failed"):  # the report goes on without it: an error all the same
                self._error(f"imgindex {command}: {line}")
        return proc.stdout

    def _scan(self) -> None:
        self._command("scan", "-q", "--workers", "1", *self._split_args())

    def _read(self, base: str) -> None:
        """duplicates --json, then Datasette requests."""
        doc = self._command("duplicates", "--json")
        try:
            json.loads(doc)
        except ValueError:
            self._error("imgindex duplicates --json printed no JSON")
        self._requests(base)

    def _report(self) -> None:
        """A report now and then: it takes seconds, and a snapshot held that long."""
        self._command("report", "--out", str(self.work / "reports"))
        self.stop.wait(REPORT_EVERY)

    def _requests(self, base: str) -> None:
        images = self._get(f"{base}/index/images.json?_shape=array&_col=id&_size=50")
        for path in (
            "/index",
            "/index/images?_size=20",
            "/index/duplicate_groups",
            "/index/leakage",
            "/index/near_duplicates.json?distance=8",
            "/index/split_summary.json",
        ):
            self._get(base + path)
        ids = [row["id"] for row in json.loads(images or b"[]")]
        for image_id in self.random.sample(ids, min(2, len(ids))):  # the image may go meanwhile: 404
            self._get(f"{base}/-/imgindex/image/{image_id}/review", missing_ok=True)
            self._get(f"{base}/-/imgindex/image/{image_id}/thumbnail", missing_ok=True)

    def _get(self, url: str, missing_ok: bool = False) -> bytes | None:
        self._count("http")
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                return bytes(response.read())
        except urllib.error.HTTPError as err:
            if not (missing_ok and err.code == 404):
                self._error(f"GET {url.split('/', 3)[-1]}: HTTP {err.code}")
        except (urllib.error.URLError, OSError) as err:
            self._error(f"GET {url.split('/', 3)[-1]}: {err}")
        return None

    def _wait_for_output(self, proc: subprocess.Popen[str], text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in (self.work / "watch.out").read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"imgindex watch did not start: {(self.work / 'watch.err').read_text()[-500:]}")
            time.sleep(0.1)

    def _wait_http(self, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5):
                    return
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _stop(self, proc: subprocess.Popen[str], command: str, expect: str = "") -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            self._error(f"imgindex {command} did not stop on SIGINT")
        stdout = (self.work / f"{command}.out").read_text()
        stderr = (self.work / f"{command}.err").read_text()
        if command == "watch":
            self.outcome.busy = stderr.count(" is busy")
        failed = proc.returncode != 0 and command == "watch"  # uvicorn's exit status on SIGINT says nothing
        if failed or "Traceback" in stderr or expect not in stdout:
            last = (stderr.strip().splitlines() or ["(no output)"])[-1]
            self._error(f"imgindex {command} ended with {proc.returncode}: {last}")

    def _last_change(self, watch: subprocess.Popen[str]) -> None:
        """One more file, once nothing else runs: the watch must still be there to index it."""
        if watch.poll() is not None:
            self._error(f"imgindex watch died during the run (exit {watch.returncode})")
            return
        path = self._add_copy("val")
        started = time.monotonic()
        while not _indexed(self.db, path):
            if time.monotonic() - started > 60 or watch.poll() is not None:
                self._error("the last change did not reach the index through imgindex watch")
                return
            time.sleep(0.05)
        self.outcome.last_change_seconds = time.monotonic() - started

    # ------------------------------------------------------------ file changes

    def _change_files(self) -> None:
        """A burst of a few changes, then a pause longer than the watch's settle time: the watch
        writes a batch after each burst."""
        for _ in range(self.random.randint(1, 4)):
            self._change_one()
            time.sleep(self.random.uniform(0.0, 0.05))
        time.sleep(self.random.uniform(0.25, 0.6))

    def _change_one(self) -> None:
        split = self.random.choice(SPLITS)
        present = sorted((self.data / "images" / split).iterdir())
        roll = self.random.random()
        if len(present) < MAX_FILES and roll < 0.3:
            self._add_copy(split)
        elif len(present) < MAX_FILES and roll < 0.55:
            self._add_variant(split)
        elif roll < 0.75 and present:
            self._change(self.random.choice(present))
        elif roll < 0.85 and present:
            self._relabel(self.random.choice(present))
        elif present:
            self._remove(self.random.choice(present))

    def _name(self, split: str, suffix: str) -> Path:
        with self.lock:
            self.serial += 1
            return self.data / "images" / split / f"soak-{self.serial:05d}{suffix}"

    def _label_of(self, image: Path) -> Path:
        return image.parent.parent.parent / "labels" / image.parent.name / f"{image.stem}.txt"

    def _add_copy(self, split: str) -> Path:
        source, labels = self.random.choice(self.sources)
        target = self._name(split, source.suffix.lower())
        if labels is not None:
            shutil.copy(labels, self._label_of(target))
        self._write(target, source.read_bytes())
        self._count("file added")
        return target

    def _add_variant(self, split: str) -> None:
        source, labels = self.random.choice(self.sources)
        suffix = self.random.choice([".jpg", ".png"])
        target = self._name(split, suffix)
        if labels is not None:
            shutil.copy(labels, self._label_of(target))
        self._write(target, self._variant(source, suffix))
        self._count("variant added")

    def _variant(self, source: Path, suffix: str) -> bytes:
        """The picture resized, brightened, cropped by a few per cent, or only re-encoded."""
        with Image.open(source) as opened:
            image = opened.convert("RGB")
        kind = self.random.choice(["resize", "brighter", "crop", "re-encode"])
        if kind == "resize":
            scale = self.random.uniform(0.4, 0.9)
            image = image.resize((max(8, int(image.width * scale)), max(8, int(image.height * scale))))
        elif kind == "brighter":
            image = ImageEnhance.Brightness(image).enhance(self.random.uniform(1.05, 1.3))
        elif kind == "crop":
            dx, dy = int(image.width * 0.05), int(image.height * 0.05)
            image = image.crop((dx, dy, image.width, image.height))
        out = io.BytesIO()
        image.save(out, format="JPEG" if suffix == ".jpg" else "PNG", quality=self.random.randint(70, 92))
        return out.getvalue()

    def _change(self, image: Path) -> None:
        """Another picture under the same name (in place, or renamed over it)."""
        source, _ = self.random.choice(self.sources)
        self._write(image, self._variant(source, ".png" if image.suffix.lower() == ".png" else ".jpg"))
        self._count("file changed")

    def _relabel(self, image: Path) -> None:
        label = self._label_of(image)
        if label.exists():
            lines = label.read_text().splitlines()
            label.write_text("\n".join(lines[: max(1, len(lines) - 1)]) + "\n")
            self._count("labels changed")

    def _remove(self, image: Path) -> None:
        image.unlink(missing_ok=True)
        if self.random.random() < 0.8:  # else a label file without its image stays
            self._label_of(image).unlink(missing_ok=True)
        self._count("file removed")

    def _write(self, path: Path, content: bytes) -> None:
        """Half the writes in place (watch and scan may see them half-written), half renamed into place."""
        if self.random.random() < 0.5:
            path.write_bytes(content)
            return
        temporary = self.work / f"incoming-{threading.get_ident()}"
        temporary.write_bytes(content)
        os.replace(temporary, path)


def _images(folder: Path, labels: Path | None) -> list[tuple[Path, Path | None]]:
    found = []
    for image in sorted(folder.iterdir()):
        if image.suffix.lower() in (".jpg", ".png"):
            label = labels / f"{image.stem}.txt" if labels else None
            found.append((image, label if label and label.exists() else None))
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _read_only(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=30)


def _indexed(db: Path, path: Path) -> bool:
    conn = _read_only(db)
    try:
        return conn.execute("SELECT 1 FROM images WHERE path = ?", [str(path)]).fetchone() is not None
    finally:
        conn.close()


# ---------------------------------------------------------------- comparing two indexes


def compare(db: Path, clean: Path) -> list[str]:
    """Rows in one index and not in the other (as many times as they differ), table by table:
    every table of imgindex.consistency (images, labels, label problems, near pairs, the verdict),
    ids turned into the paths they name."""
    found = consistency.compare_files(db, clean)
    differences = []
    for table, (only_ours, only_clean) in found.items():
        differences += [f"{table}: only after the run: {row}" for row in only_ours.elements()]
        differences += [f"{table}: only in a clean scan: {row}" for row in only_clean.elements()]
    return differences


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=180, help="how long the commands run together")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scanners", type=int, default=2, help="scans running at once, each again and again")
    parser.add_argument(
        "--extra",
        type=Path,
        help="a folder of images (e.g. /work/shared/data/chess_pieces_coco) linked into the third split",
    )
    parser.add_argument("--keep", type=Path, help="work in this (new) folder and keep it")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="imgindex-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        outcome = Soak(work, args.seconds, args.seed, args.scanners, extra=args.extra).run()
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    runs = ", ".join(f"{n} {what}" for what, n in sorted(outcome.runs.items()))
    print(f"ran {args.seconds:.0f} s ({time.monotonic() - started:.0f} s in all): {runs}")
    print(
        f"watch: {outcome.busy} batches applied again after waiting for the lock; "
        f"the last change reached the index in {outcome.last_change_seconds:.2f} s"
    )
    for line in outcome.errors[:20] + outcome.differences[:20]:
        print(f"  {line}")
    print(f"errors seen: {len(outcome.errors)}")
    print(f"rows that differ from a clean scan: {len(outcome.differences)}")
    return 0 if not outcome.errors and not outcome.differences else 1


if __name__ == "__main__":
    sys.exit(main())
