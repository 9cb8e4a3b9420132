"""Scan speed and memory, as ratios against baselines measured in the same run.

    python scripts/bench_scan.py [FOLDER] [--workers N] [--tree-files 100000]

FOLDER defaults to ../shared/data. Measures: the decode floor (Pillow draft decode only, at the
scan's draft scale, same worker count and chunking), a naive one-process imagehash.dhash loop,
the cold scan, the warm no-change re-scan and a bare os.scandir+stat walk, what the image-quality
measures add to the cold scan (--quality-only: that alone), and where the cold scan's time goes (per-image extraction against the decode alone, in one process; the scan's
main-process CPU); then, on a tree of hard links to those images (--tree-files of them), the
cold scan's peak RSS and the warm re-scan against the stat walk. Timings taken in turns, best of
three or five, since the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from imgindex.__main__ import one_blas_thread

one_blas_thread()  # before NumPy loads: scans in this process run as the imgindex command runs them

import imagehash
from PIL import Image

from imgindex.executors import chunk_size, default_workers, pool_context
from imgindex.extract import decode, extract, measures
from imgindex.labels import LabelOptions, LabelSetup, prepare
from imgindex.scan import scan
from imgindex.store import open_db
from imgindex.walk import walk_images


def timed(fn: Callable[[], object], repeat: int = 1) -> float:
    """Best of ``repeat`` runs: the least disturbed by other work on the machine."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def cold_scan(folder: Path, workers: int, tmp: str) -> float:
    """Run a cold scan; return the CPU seconds its main process used (workers not counted)."""
    db = Path(tempfile.mkdtemp(dir=tmp)) / "cold.db"
    start = time.process_time()
    scan(db, {"data": [folder]}, workers=workers)
    return time.process_time() - start


def per_image_costs(paths: list[str]) -> tuple[float, float]:
    """Microseconds per image, in this one process: the floor's decode, and the scan's whole
    extraction (read, SHA-256, decode, hashes, statistics); best of three."""
    decode_s = extract_s = float("inf")
    for _ in range(3):
        decode_s = min(decode_s, timed(lambda: [decode_only(p) for p in paths]))
        extract_s = min(extract_s, timed(lambda: [extract(p) for p in paths]))
    return decode_s / len(paths) * 1e6, extract_s / len(paths) * 1e6


def decode_only(path: str) -> None:
    """The floor: open and decode as the scan does (a JPEG at its draft scale), nothing else."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                decode(im)
    except Exception:
        pass


def floor(paths: list[str], workers: int) -> None:
    with pool_context().Pool(workers) as pool:
        for _ in pool.imap_unordered(decode_only, paths, chunksize=chunk_size(len(paths), workers)):
            pass


QUALITY_MEASURES = ("exposure", "chroma", "sharpness")  # imgindex.extract.measures: the image-quality ones


def with_measures(names: tuple[str, ...] | None, fn: Callable[[], object]) -> Callable[[], object]:
    """fn run with only the named measures (None: all); the workers fork from this process."""

    def run() -> object:
        everything = list(measures.MEASURES)
        if names is not None:
            measures.MEASURES[:] = [m for m in everything if m.__name__ in names]
        try:
            return fn()
        finally:
            measures.MEASURES[:] = everything

    return run


def quality_cost(folder: Path, paths: list[str], workers: int, tmp: str) -> None:
    """The cold scan with and without the image-quality measures, taken in turns; and what a finer
    JPEG draft (1/4 instead of 1/8, for a sharpness measure that sees smaller blurs) costs to decode."""
    others = tuple(m.__name__ for m in measures.MEASURES if m.__name__ not in QUALITY_MEASURES)
    cold = lambda: cold_scan(folder, workers, tmp)  # noqa: E731
    t_without, t_with = interleaved(with_measures(others, cold), with_measures(None, cold), rounds=9)
    print(
        f"image-quality measures: cold scan {t_with:.2f} s against {t_without:.2f} s without them "
        f"= {t_with / t_without - 1:+.1%}"
    )
    extract_all = lambda: [extract(p) for p in paths]  # noqa: E731
    c_without = c_with = float("inf")
    for _ in range(5):  # in turns, best of five
        c_without = min(c_without, cpu_seconds(with_measures(others, extract_all)))
        c_with = min(c_with, cpu_seconds(with_measures(None, extract_all)))
    print(
        f"image-quality measures: extraction in one process {c_with:.2f} CPU s against {c_without:.2f} "
        f"= {c_with / c_without - 1:+.1%}"
    )
    jpegs = [p for p in paths if p.lower().endswith((".jpg", ".jpeg"))]
    t_eighth, t_quarter = interleaved(lambda: draft_all(jpegs, 8), lambda: draft_all(jpegs, 4), rounds=3)
    print(f"decoding the {len(jpegs)} JPEGs at a 1/4 draft instead of 1/8: {t_quarter / t_eighth - 1:+.1%}")


def cpu_seconds(fn: Callable[[], object]) -> float:
    """Run fn; return the CPU seconds it used (less disturbed by other work than the wall clock)."""
    start = time.process_time()
    fn()
    return time.process_time() - start


def draft_all(paths: list[str], scale: int) -> None:
    for path in paths:
        try:
            with Image.open(path) as im:
                im.draft("RGB", (im.width // scale, im.height // scale))
                im.load()
        except Exception:  # the shared data holds a corrupt JPEG on purpose
            pass


def naive(paths: list[str]) -> None:
    for p in paths:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                imagehash.dhash(Image.open(p))
        except Exception:
            pass


def stat_walk(folder: Path) -> int:
    count, stack = 0, [str(folder)]
    while stack:
        for entry in os.scandir(stack.pop()):
            if entry.is_dir():
                stack.append(entry.path)
            else:
                entry.stat()
                count += 1
    return count


def link_tree(paths: list[str], target: Path, n: int) -> None:
    """n hard links to the given images, 1,000 per folder."""
    for i in range(n):
        src = paths[i % len(paths)]
        folder = target / f"d{i // 1000:04d}"
        if i % 1000 == 0:
            folder.mkdir(parents=True)
        os.link(src, folder / f"{i:07d}{Path(src).suffix.lower()}")


def scan_subprocess(db: Path, folder: Path, workers: int) -> tuple[float, int]:
    """Seconds and peak RSS (MB, the largest process of the scan: its main process or a worker) of
    a CLI scan, measured by a wrapper process so that nothing else run here is counted."""
    scan_cmd = [
        sys.executable,
        "-m",
        "imgindex",
        "scan",
        "--db",
        str(db),
        "--workers",
        str(workers),
        "-q",
        f"tree={folder}",
    ]
    wrapper = (
        "import resource, subprocess, sys, time; start = time.perf_counter(); "
        "subprocess.run(sys.argv[1:], check=True, capture_output=True); "
        "print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapper, *scan_cmd], check=True, cwd=ROOT, capture_output=True, text=True
    )
    seconds, rss_kb = out.stdout.split()
    return float(seconds), int(rss_kb) // 1024


def no_labels(db: Path, tree: Path) -> LabelSetup:
    index = open_db(db)
    try:
        return prepare(index, {"tree": [tree]}, LabelOptions(labels="none"))
    finally:
        index.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--tree-files", type=int, default=100_000)
    parser.add_argument("--quality-only", action="store_true", help="Measure only the image-quality measures' cost.")
    args = parser.parse_args()
    folder, workers = Path(args.folder).resolve(), args.workers
    paths = [e.path for e in walk_images(folder)]
    n = len(paths)
    print(f"{n} image files under {folder}, {workers} workers")
    if args.quality_only:
        with tempfile.TemporaryDirectory() as tmp:
            quality_cost(folder, paths, workers, tmp)
        return

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        t_floor, t_cold, main_cpu = float("inf"), float("inf"), float("inf")
        for _ in range(3):  # interleaved, best of three: both see the same machine
            t_floor = min(t_floor, timed(lambda: floor(paths, workers)))
            start = time.perf_counter()
            main_cpu = min(main_cpu, cold_scan(folder, workers, tmp))
            t_cold = min(t_cold, time.perf_counter() - start)
        decode_us, extract_us = per_image_costs(paths)
        quality_cost(folder, paths, workers, tmp)
        t_naive = timed(lambda: naive(paths))
        scan(db, {"data": [folder]}, workers=workers)
        t_walk, t_warm = interleaved(lambda: stat_walk(folder), lambda: scan(db, {"data": [folder]}, workers=workers))
        print(f"decode floor      {n / t_floor:8.1f} files/s")
        print(f"naive dhash loop  {n / t_naive:8.1f} files/s")
        print(
            f"cold scan         {n / t_cold:8.1f} files/s = {t_floor / t_cold:.0%} of the floor, "
            f"{t_naive / t_cold:.1f}x the naive loop"
        )
        print(f"warm re-scan      {t_warm:8.3f} s = {t_warm / t_walk:.2f}x the stat walk ({t_walk:.3f} s)")
        print(
            f"where the cold scan's time goes: in one process, extraction takes {extract_us:.0f} us per image "
            f"against {decode_us:.0f} us for the floor's decode ({decode_us / extract_us:.0%}); the scan's main "
            f"process (rows, labels, near pairs, and taking the workers' results) used {main_cpu:.2f} CPU s = "
            f"{main_cpu / n * 1e6:.0f} us per image"
        )

        if args.tree_files:
            tree = Path(tmp) / "tree"
            link_tree(paths, tree, args.tree_files)
            tree_db = Path(tmp) / "tree.db"
            t_tree_floor = timed(lambda: floor([e.path for e in walk_images(tree)], workers))
            t_tree_cold, rss = scan_subprocess(tree_db, tree, workers)
            print(
                f"{args.tree_files} hard links: cold scan {t_tree_cold:.1f} s "
                f"({args.tree_files / t_tree_cold:.0f} files/s = {t_tree_floor / t_tree_cold:.0%} of the floor's "
                f"{args.tree_files / t_tree_floor:.0f} files/s), peak RSS {rss} MB"
            )
            t_tree_walk, t_tree_warm = interleaved(
                lambda: stat_walk(tree), lambda: scan(tree_db, {"tree": [tree]}, workers=workers)
            )
            print(
                f"{args.tree_files} hard links: warm re-scan {t_tree_warm:.2f} s = "
                f"{t_tree_warm / t_tree_walk:.2f}x the stat walk ({t_tree_walk:.2f} s)"
            )
            setup = no_labels(tree_db, tree)
            scan(tree_db, {"tree": [tree]}, workers=workers, label_setup=setup)  # the labels go: not a warm re-scan
            t_tree_walk, t_images = interleaved(
                lambda: stat_walk(tree), lambda: scan(tree_db, {"tree": [tree]}, workers=workers, label_setup=setup)
            )
            print(
                f"{args.tree_files} hard links: warm re-scan of the images alone (--labels none; the tree's 100 "
                f"folders otherwise read as class folders) {t_images:.2f} s = {t_images / t_tree_walk:.2f}x the stat walk"
            )


def interleaved(baseline: Callable[[], object], measured: Callable[[], object], rounds: int = 5) -> tuple[float, float]:
    """Best of ``rounds`` of each, taken in turns, so that both see the same machine."""
    best_base, best_measured = float("inf"), float("inf")
    for _ in range(rounds):
        best_base = min(best_base, timed(baseline))
        best_measured = min(best_measured, timed(measured))
    return best_base, best_measured


if __name__ == "__main__":
    main()
