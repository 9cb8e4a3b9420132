"""Peak memory of `imgindex serve` answering concurrent thumbnail requests of a huge PNG, against
a baseline of small images measured in the same run.

    python scripts/bench_thumbnails.py [--side 12000] [--concurrent 8] [--before /work/main]

Each case runs in a fresh `imgindex serve` process; its peak RSS (VmHWM) is read from /proc after
the requests, and its resident memory a second later. Cases: the small real JPEGs of tests/data/coco8 (baseline), the huge PNG with the
default pixel budget (a placeholder, HTTP 413), the huge PNG with a budget that admits it (decoded,
at most --thumbnail-concurrency at once), and with --before, the same huge requests served by
another checkout of imgindex (e.g. the release before these limits). Every request asks another
size, so none is answered from the thumbnail cache. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image

from imgindex.scan import scan

ROOT = Path(__file__).resolve().parent.parent
SMALL = ROOT / "tests" / "data" / "coco8" / "images" / "train"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int, field: str = "VmHWM") -> float:
    """Peak (VmHWM) or current (VmRSS) resident memory of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"no {field} in /proc: Linux only")


def start(db: Path, code: Path, options: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(code)}
    args = [sys.executable, "-m", "imgindex", "serve", "--db", str(db), "--port", str(port), *options]
    proc = subprocess.Popen(args, env=env, cwd=code, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(base + "/", timeout=5)
            return proc, base
        except httpx.TransportError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(
                    f"server did not start: {proc.stderr.read().decode() if proc.stderr else ''}"
                ) from None
            time.sleep(0.2)


async def fetch_all(base: str, urls: list[str]) -> list[int]:
    async with httpx.AsyncClient(base_url=base, timeout=600) as client:
        responses = await asyncio.gather(*(client.get(url) for url in urls))
    return [r.status_code for r in responses]


def case(name: str, db: Path, code: Path, options: list[str], ids: list[int], concurrent: int) -> None:
    proc, base = start(db, code, options)
    try:
        idle = rss_mb(proc.pid)
        urls = [f"/-/imgindex/image/{ids[n % len(ids)]}/thumbnail?size={160 + n}" for n in range(concurrent)]
        started = time.monotonic()
        statuses = asyncio.run(fetch_all(base, urls))
        seconds = time.monotonic() - started
        peak = rss_mb(proc.pid)
        time.sleep(1)
        after = rss_mb(proc.pid, "VmRSS")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    codes = ", ".join(f"{statuses.count(c)} x {c}" for c in sorted(set(statuses)))
    print(
        f"| {name} | {concurrent} | {codes} | {seconds:.2f} s | {idle:.0f} MB | {peak:.0f} MB | {after:.0f} MB |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--side", type=int, default=12000, help="side of the huge flat PNG (default 12000)")
    parser.add_argument("--concurrent", type=int, default=8, help="thumbnail requests sent at once (default 8)")
    parser.add_argument("--before", type=Path, help="another imgindex checkout to compare with (e.g. /work/main)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        small, large = Path(tmp) / "small", Path(tmp) / "large"
        shutil.copytree(SMALL, small)
        large.mkdir()
        Image.new("RGB", (args.side, args.side), (200, 120, 40)).save(large / "huge.png")
        db = Path(tmp) / "index.db"
        scan(db, {"small": [small], "large": [large]}, workers=1)
        with sqlite3.connect(db) as conn:
            small_ids = [r[0] for r in conn.execute("select id from images where split = 'small' order by id")]
            (huge_id,) = conn.execute("select id from images where split = 'large'").fetchone()
        pixels = args.side * args.side
        print(f"huge.png: {args.side}x{args.side} ({pixels / 1e6:.0f} MP); small: {len(small_ids)} coco8 JPEGs")
        print("| case | requests at once | responses | time | RSS idle | peak RSS | RSS 1 s after |")
        print("|---|---|---|---|---|---|---|")
        case("small JPEGs (baseline)", db, ROOT, [], small_ids, args.concurrent)
        case("huge PNG, default budget", db, ROOT, [], [huge_id], args.concurrent)
        admit = ["--thumbnail-max-pixels", str(pixels)]
        case("huge PNG, budget admits it (2 at once)", db, ROOT, admit, [huge_id], args.concurrent)
        one = [*admit, "--thumbnail-concurrency", "1"]
        case("huge PNG, budget admits it (1 at once)", db, ROOT, one, [huge_id], args.concurrent)
        if args.before:
            case(f"huge PNG, {args.before}", db, args.before.resolve(), [], [huge_id], args.concurrent)


if __name__ == "__main__":
    main()
