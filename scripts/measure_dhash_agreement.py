"""How often the scan's dHash (JPEG draft decode) equals imagehash.dhash on a full decode
(both of the image as displayed, EXIF orientation applied).

    python scripts/measure_dhash_agreement.py [FOLDER] [--sides 32,64,128]

FOLDER defaults to ../shared/data. For each analysis side (the scan uses
imgindex.extract.ANALYSIS_SIDE), prints the share of identical hashes and the mean number of
differing bits, over all readable images and over JPEGs alone, with the relative extraction time.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import imagehash
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from imgindex import extract as extract_module  # noqa: E402
from imgindex.walk import walk_images  # noqa: E402


def reference_hashes(paths: list[str]) -> dict[str, str]:
    out = {}
    for p in paths:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out[p] = str(imagehash.dhash(ImageOps.exif_transpose(Image.open(p))))
        except Exception:
            continue
    return out


def agreement(reference: dict[str, str], side: int) -> tuple[dict[str, tuple[int, int, float]], float]:
    """format group -> (images, identical, mean differing bits); and seconds taken."""
    extract_module.ANALYSIS_SIDE = side
    groups: dict[str, list[int]] = {"all": [], "JPEG": []}
    start = time.perf_counter()
    for path, ref in reference.items():
        row = extract_module.extract(path)
        if not row.get("dhash"):
            continue
        bits = (int(row["dhash"], 16) ^ int(ref, 16)).bit_count()
        groups["all"].append(bits)
        if row["format"] in ("JPEG", "MPO"):
            groups["JPEG"].append(bits)
    seconds = time.perf_counter() - start
    return {k: (len(v), sum(b == 0 for b in v), sum(v) / max(len(v), 1)) for k, v in groups.items()}, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--sides", default=f"32,{extract_module.ANALYSIS_SIDE},128,256")
    args = parser.parse_args()
    paths = [e.path for e in walk_images(Path(args.folder))]
    reference = reference_hashes(paths)
    print(f"{len(reference)} readable images under {args.folder}")
    print("side | images | identical | mean differing bits | JPEG identical | JPEG mean bits | time")
    base = None
    for side in sorted({int(s) for s in args.sides.split(",")}):
        stats, seconds = agreement(reference, side)
        base = base or seconds
        n, same, mean = stats["all"]
        jn, jsame, jmean = stats["JPEG"]
        print(f"{side:4d} | {n:6d} | {same / n:9.1%} | {mean:19.3f} | {jsame / max(jn, 1):14.1%} | "
              f"{jmean:14.3f} | {seconds / base:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
