"""Peak memory of scanning huge images against a normal-size photo.

Creates, in a temporary folder, a 4032x3024 JPEG (a 12-megapixel photo: the baseline), a
15000x15000 JPEG and a 12000x12000 PNG, then scans each alone with `imgindex scan --executor
inline` in its own process (extraction in that process, as a worker does it) and prints the
process's peak RSS, and its ratio to the baseline's. The PNG is scanned twice: with the default
--max-pixels (refused before decoding: an error row) and with a budget that lets it decode.

    python scripts/bench_huge_images.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def photo_like(width: int, height: int, mode: str = "RGB", seed: int = 0) -> Any:
    """A smooth gradient with some noise, built in strips (never a full float array)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    bands = 3 if mode == "RGB" else 1
    out = Image.new(mode, (width, height))
    strip = 500
    x = np.linspace(0, 255, width, dtype=np.float32)
    for top in range(0, height, strip):
        rows = min(strip, height - top)
        y = np.linspace(top, top + rows, rows, dtype=np.float32)[:, None] * (255.0 / height)
        base = (x[None, :] * 0.6 + y * 0.4).astype(np.uint8)
        noise = rng.integers(0, 16, size=(rows, width), dtype=np.uint8)
        grey = base + noise
        arr = np.repeat(grey[:, :, None], bands, axis=2) if bands == 3 else grey
        out.paste(Image.fromarray(arr.squeeze() if bands == 1 else arr, mode), (0, top))
    return out


def make_files(folder: Path) -> dict[str, Path]:
    files = {}
    for name, (w, h, fmt) in {
        "photo_4032x3024.jpg": (4032, 3024, "JPEG"),
        "huge_15000x15000.jpg": (15000, 15000, "JPEG"),
        "huge_12000x12000.png": (12000, 12000, "PNG"),
    }.items():
        sub = folder / name.split(".")[0]
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / name
        if not path.exists():
            im = photo_like(w, h)
            im.save(path, fmt, **({"quality": 85} if fmt == "JPEG" else {"compress_level": 1}))
            del im
        files[name] = path
    return files


def scan_peak(folder: Path, db: Path, max_pixels: int) -> tuple[float, float, str]:
    """(peak RSS in MB, seconds, the image row's error) of `imgindex scan` of one folder, alone in a process."""
    db.unlink(missing_ok=True)
    args = [sys.executable, "-m", "imgindex", "scan", "--db", str(db), "-q", "--executor", "inline"]
    args += ["--max-pixels", str(max_pixels), f"bench={folder}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    if status != 0:
        raise SystemExit(f"scan of {folder} failed: status {status}")
    out = subprocess.run(
        [sys.executable, "-m", "imgindex", "sql", "--db", str(db), "--json", "select error from images"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    error = json.loads(out.stdout)[0]["error"] or ""
    return usage.ru_maxrss / 1024, seconds, error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="create the images in this folder and keep them")
    parser.add_argument("--make", type=Path, help=argparse.SUPPRESS)  # the child that creates them
    opts = parser.parse_args()
    if opts.make:
        make_files(opts.make)
        return
    # A child's peak RSS starts at its parent's (Linux keeps it across fork and exec): this process
    # stays small, and the images are created by a child of their own.
    from imgindex.extract.decode import MAX_PIXELS

    with tempfile.TemporaryDirectory() as tmp:
        folder = opts.keep or Path(tmp)
        started = time.monotonic()
        subprocess.run([sys.executable, __file__, "--make", str(folder)], check=True)
        files = {path.name: path for path in folder.glob("*/*.*")}
        print(f"images created in {time.monotonic() - started:.0f} s")
        db = Path(tmp) / "bench.db"
        runs = [
            ("photo_4032x3024.jpg", MAX_PIXELS),
            ("huge_15000x15000.jpg", MAX_PIXELS),
            ("huge_12000x12000.png", MAX_PIXELS),
            ("huge_12000x12000.png", 150_000_000),
        ]
        baseline = 0.0
        print(f"{'file':<22} {'--max-pixels':>12} {'peak RSS':>10} {'x photo':>8} {'time':>7}  result")
        for name, budget in runs:
            peak, seconds, error = scan_peak(files[name].parent, db, budget)
            baseline = baseline or peak
            result = "indexed" if not error else f"error: {error[:70]}..."
            print(f"{name:<22} {budget:>12,} {peak:>7.0f} MB {peak / baseline:>7.2f}x {seconds:>6.1f}s  {result}")


if __name__ == "__main__":
    main()
