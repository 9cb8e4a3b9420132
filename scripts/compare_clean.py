"""Compare an index with a clean scan of the same files, row by row.

    python scripts/compare_clean.py --db index.db train=data/train val=data/val [--show 5]

Scans the given splits into a new database in a temporary folder (the same command a user would
run), then prints, per table of imgindex.consistency, the rows only the index holds and the rows
only the clean scan holds, and a last line "rows that differ from a clean scan: N". Exit status 1
when N > 0. Scan the index first (its files must be current), so that both see the same files.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from imgindex import consistency


def clean_scan(db: Path, splits: list[str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "imgindex", "scan", "--db", str(db), "-q", *splits], check=True, capture_output=True
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, required=True, help="the index to check")
    parser.add_argument("splits", nargs="+", help="SPLIT=DIR, as given to imgindex scan")
    parser.add_argument("--show", type=int, default=3, help="rows shown per table and side")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clean = Path(tmp) / "clean.db"
        clean_scan(clean, args.splits)
        found = consistency.compare_files(args.db, clean)
    for line in consistency.describe(found, "the index", "the clean scan", args.show):
        print(line)
    total = consistency.count(found)
    print(f"rows that differ from a clean scan: {total}")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
