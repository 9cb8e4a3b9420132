"""Kill -9 loop: scan, report and watch killed at random moments; nothing lost, nothing wrong.

    python scripts/kill_loop.py [--files 5000] [--kills 20] [--seed 0] [--data ../shared/data]

Builds a YOLO split of --files images (hard links to coco128's photos, each with its label file),
then --kills times picks one command, starts it as a real process, changes a few files when the
command is watch, and sends SIGKILL after a random delay. Between kills some files are added,
changed or removed, so later scans are incremental. At the end one scan completes the index and
the script prints what a user would lose:

    rows lost or wrong: N        (rows that differ from a clean scan of the same files)
    incomplete report outputs: N (a top-level summary.json that does not parse, or a Report.pdf
                                  that is not a whole PDF, seen after any kill)

Both should be 0.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from imgindex import consistency

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
COMMANDS = ("scan", "scan", "report", "watch")


def build_split(data: Path, root: Path, files: int) -> Path:
    """root/train/{images,labels}: files hard links to coco128's photos, with their label files."""
    images = sorted((data / "coco128" / "images" / "train2017").glob("*.jpg"))
    split = root / "train"
    (split / "images").mkdir(parents=True)
    (split / "labels").mkdir()
    for k in range(files):
        add_file(images[k % len(images)], split, f"{k:05d}")
    return split


def add_file(image: Path, split: Path, stem: str) -> None:
    os.link(image, split / "images" / f"{stem}_{image.name}")
    label = image.parents[2] / "labels" / "train2017" / f"{image.stem}.txt"
    if label.exists():
        shutil.copy(label, split / "labels" / f"{stem}_{image.stem}.txt")


def mutate(split: Path, data: Path, rng: random.Random, n: int) -> None:
    """n files added, changed (another photo's bytes) or removed, with their labels."""
    sources = sorted((data / "coco128" / "images" / "train2017").glob("*.jpg"))
    for _ in range(n):
        present = sorted((split / "images").glob("*.jpg"))
        op = rng.choice(("add", "change", "remove"))
        if op == "add" or not present:
            add_file(rng.choice(sources), split, f"m{rng.randrange(10**9):09d}")
            continue
        target = rng.choice(present)
        label = split / "labels" / f"{target.stem}.txt"
        if op == "remove":
            target.unlink()
            label.unlink(missing_ok=True)
        else:
            target.unlink()
            shutil.copy(rng.choice(sources), target)


def command(name: str, db: Path, split: Path, out: Path) -> list[str]:
    base = [sys.executable, "-m", "imgindex", name, "--db", str(db)]
    if name == "report":
        return [*base, "--out", str(out), "--title", "kill"]
    return [*base, "-q", f"train={split}"]


def outputs_complete(out: Path) -> bool:
    """The top-level outputs, where present, are whole files."""
    summary, pdf = out / "kill" / "summary.json", out / "kill" / "Report.pdf"
    if summary.exists():
        try:
            json.loads(summary.read_text())
        except ValueError:
            return False
    if pdf.exists():
        body = pdf.read_bytes()
        if not (body.startswith(b"%PDF") and b"%%EOF" in body[-1024:]):
            return False
    return True


def kill_once(name: str, db: Path, split: Path, out: Path, data: Path, rng: random.Random, most: float) -> str:
    proc = subprocess.Popen(command(name, db, split, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    delay = rng.uniform(0.2, most)
    if name == "watch":
        time.sleep(delay / 2)
        mutate(split, data, rng, 5)
        delay /= 2
    time.sleep(delay)
    finished = proc.poll() is not None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return f"{name} {'finished before' if finished else 'killed'} after {delay:.1f} s"


def compare_with_clean(db: Path, split: Path, tmp: Path) -> int:
    clean = tmp / "clean.db"
    subprocess.run(command("scan", clean, split, tmp), check=True, capture_output=True)
    found = consistency.compare_files(db, clean)
    for line in consistency.describe(found, "the killed index", "the clean one", show=2):
        print(f"  {line}")
    return consistency.count(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--most", type=float, default=8.0, help="longest delay before a kill, seconds")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        split = build_split(args.data, tmp, args.files)
        db, out = tmp / "index.db", tmp / "logs"
        incomplete = 0
        for k in range(args.kills):
            name = rng.choice(COMMANDS)
            print(f"{k + 1:2d}. {kill_once(name, db, split, out, args.data, rng, args.most)}", flush=True)
            incomplete += not outputs_complete(out)
            mutate(split, args.data, rng, rng.randrange(0, 20))
        subprocess.run(command("scan", db, split, out), check=True, capture_output=True)
        print(f"rows lost or wrong: {compare_with_clean(db, split, tmp)}")
        print(f"incomplete report outputs: {incomplete}")


if __name__ == "__main__":
    main()
