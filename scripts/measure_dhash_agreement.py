"""How often the scan's dHash equals imagehash.dhash on a full decode (both of the image as
displayed, EXIF orientation applied), and how often a re-encoded JPEG keeps its dHash.

    python scripts/measure_dhash_agreement.py [FOLDER] [--scales 8,4,2] [--quality 80]

FOLDER defaults to ../shared/data. For each largest JPEG draft scale (the scan uses 1/8, see
imgindex.extract.DRAFT_SCALES), prints over all readable images and over JPEGs alone the share of
dHashes identical to ImageHash's and the mean number of differing bits, with the relative
extraction time; then, for every JPEG saved again at --quality, the share whose dHash is unchanged,
for the scan's dHash and for ImageHash's.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
import warnings
from pathlib import Path

import imagehash
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from imgindex import extract as extract_module
from imgindex.walk import walk_images


def reference_hash(source: str | io.BytesIO) -> str | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return str(imagehash.dhash(ImageOps.exif_transpose(Image.open(source))))
    except Exception:
        return None


def use_scales(largest: int) -> None:
    extract_module.DRAFT_SCALES = tuple(s for s in (8, 4, 2, 1) if s <= largest)
    extract_module.block_weights.cache_clear()


def agreement(reference: dict[str, str], largest: int) -> tuple[dict[str, tuple[int, int, float]], float]:
    """format group -> (images, identical, mean differing bits); and seconds taken."""
    use_scales(largest)
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


def reencoded_stability(reference: dict[str, str], quality: int, tmp: Path) -> tuple[int, int, int]:
    """(JPEGs, scan dHash unchanged after re-encoding, ImageHash's unchanged)."""
    use_scales(8)
    n = ours = theirs = 0
    copy = tmp / "reencoded.jpg"
    for path, ref in reference.items():
        row = extract_module.extract(path)
        if row.get("format") != "JPEG" or not row.get("dhash"):
            continue
        with Image.open(path) as im:
            im.save(copy, "JPEG", quality=quality, exif=im.getexif())
        n += 1
        ours += extract_module.extract(str(copy))["dhash"] == row["dhash"]
        theirs += reference_hash(str(copy)) == ref
    return n, ours, theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--scales", default="8,4,2")
    parser.add_argument("--quality", type=int, default=80)
    args = parser.parse_args()
    paths = [e.path for e in walk_images(Path(args.folder))]
    reference = {p: h for p in paths if (h := reference_hash(p)) is not None}
    print(f"{len(reference)} readable images under {args.folder}")
    print("draft scale | images | identical | mean differing bits | JPEG identical | JPEG mean bits | time")
    base = None
    for largest in sorted({int(s) for s in args.scales.split(",")}, reverse=True):
        stats, seconds = agreement(reference, largest)
        base = base or seconds
        n, same, mean = stats["all"]
        jn, jsame, jmean = stats["JPEG"]
        print(
            f"1/{largest:<9d} | {n:6d} | {same / n:9.1%} | {mean:19.3f} | {jsame / max(jn, 1):14.1%} | "
            f"{jmean:14.3f} | {seconds / base:.2f}x"
        )
    with tempfile.TemporaryDirectory() as tmp:
        n, ours, theirs = reencoded_stability(reference, args.quality, Path(tmp))
    print(
        f"{n} JPEGs saved again at quality {args.quality}: dHash unchanged for {ours / n:.1%} (scan), "
        f"{theirs / n:.1%} (imagehash.dhash on a full decode)"
    )


if __name__ == "__main__":
    main()
