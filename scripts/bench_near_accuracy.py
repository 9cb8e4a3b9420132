"""Near-duplicate accuracy: precision and recall at each --max-distance K on real images.

Scans, with the real `imgindex scan`, the public datasets of ../shared/data (imagededup, coco128,
coco8, raccoon_voc, bccd_voc, jenssegers, image_match_monalisa, skimage/sklearn samples) together
with copies this script plants from 40 coco128 photos, then compares the duplicate groups with
ground truth:

- duplicates (from the folders' README.txt): resized / grey / alpha / WebP copies in imagededup,
  coco8 = re-encoded coco128 images, raccoon 50~52~74, 21~45, 51~85 (caption), 186~199,
  BloodImage 37~38 (shifted field), the 5 versions of jenssegers' forest, the two Mona Lisa photos;
  byte-identical files (sha256) are duplicates too, but are left out of the scores (trivial).
- planted copies: JPEG re-encode q50/q75/q95, resize to 50 %, 2 % crop (left and top), brightness
  +10 % / -10 %, EXIF rotation (pixels turned 90 degrees with orientation tag 6, so a viewer shows
  the original), and flat images (white, blue, black at several sizes: same colour = duplicate).
- everything else is not a duplicate; the hard case is reported on its own: different photos of
  one scene (jenssegers' 3 office photos, the skimage stereo pair, the Mona Lisa remix, UKBench
  flipped and rotated copies).

A pair counts as found when both images land in one group (connected component of the pairs
`imgindex duplicates` accepts). "dHash only" scores the same groups without the second-signal
check, to show what it buys.

    .venv/bin/python scripts/bench_near_accuracy.py                  # prints the markdown tables
    .venv/bin/python scripts/bench_near_accuracy.py --data /path/to/shared/data
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from imgindex import store
from imgindex.near import pairs as near_index
from imgindex.near.groups import components

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FOLDERS = [
    "imagededup_testdata",
    "coco128/images/train2017",
    "coco8/images",
    "raccoon_voc/images",
    "bccd_voc/JPEGImages",
    "jenssegers_imagehash_testdata",
    "image_match_monalisa",
    "skimage_sklearn_samples",
]
DD, RAC, JS, ML = "imagededup_testdata", "raccoon_voc/images", "jenssegers_imagehash_testdata", "image_match_monalisa"
FOREST = [f"{JS}/forest/forest-{v}.jpg" for v in ("copyright", "cropped", "high", "low", "thumb")]
OFFICE = [
    f"{JS}/office/tumblr_{v}_1280.jpg" for v in ("ndyfdoR6Wp1tubinno1", "ndyfnr7lk21tubinno1", "ndyfq386o41tubinno1")
]
DUPLICATES = [
    (f"{DD}/mixed_images/ukbench00120.jpg", f"{DD}/mixed_images/ukbench00120_resize.jpg"),
    (f"{DD}/mixed_images/ukbench00120.jpg", f"{DD}/ukbench00120_gray.jpg"),
    (f"{DD}/mixed_images/ukbench00120.jpg", f"{DD}/alpha_channel_image.png"),
    (f"{DD}/base_images/ukbench09380.jpg", f"{DD}/formats_images/ukbench09380.webp"),
    *(
        (f"{RAC}/raccoon-{a}.jpg", f"{RAC}/raccoon-{b}.jpg")
        for a, b in ((50, 52), (50, 74), (21, 45), (51, 85), (186, 199))
    ),
    ("bccd_voc/JPEGImages/BloodImage_00037.jpg", "bccd_voc/JPEGImages/BloodImage_00038.jpg"),
    *itertools.combinations(FOREST, 2),
    (f"{ML}/MonaLisa_Wikipedia.jpg", f"{ML}/MonaLisa_WikiImages.jpg"),
]
HARD = [
    *itertools.combinations(OFFICE, 2),
    (
        "skimage_sklearn_samples/skimage_0.26.0/motorcycle_left.png",
        "skimage_sklearn_samples/skimage_0.26.0/motorcycle_right.png",
    ),
    (f"{ML}/MonaLisa_Remix_Flickr.jpg", f"{ML}/MonaLisa_Wikipedia.jpg"),
    (f"{ML}/MonaLisa_Remix_Flickr.jpg", f"{ML}/MonaLisa_WikiImages.jpg"),
    (f"{DD}/mixed_images/ukbench00120.jpg", f"{DD}/mixed_images/ukbench00120_hflip.jpg"),
    (f"{DD}/mixed_images/ukbench00120.jpg", f"{DD}/mixed_images/ukbench00120_rotation.jpg"),
]
TRANSFORMS = [
    "jpeg-q50",
    "jpeg-q75",
    "jpeg-q95",
    "resize-50%",
    "crop-2%",
    "brightness+10%",
    "brightness-10%",
    "exif-rotation",
]
FLAT = {"white": (255, 255, 255), "blue": (20, 60, 200), "black": (0, 0, 0)}
PLANTED_SOURCES = 40
KS = list(range(0, 17))


def plant(source: Path, out: Path, transform: str) -> None:
    """Write a transformed copy of source."""
    with Image.open(source) as im:
        rgb = im.convert("RGB")
    w, h = rgb.size
    if transform.startswith("jpeg-q"):
        rgb.save(out, "JPEG", quality=int(transform[6:]))
    elif transform == "resize-50%":
        rgb.resize((w // 2, h // 2), Image.Resampling.LANCZOS).save(out, "JPEG", quality=90)
    elif transform == "crop-2%":
        rgb.crop((w // 50, h // 50, w, h)).save(out, "JPEG", quality=90)
    elif transform.startswith("brightness"):
        ImageEnhance.Brightness(rgb).enhance(1.1 if "+" in transform else 0.9).save(out, "JPEG", quality=90)
    elif transform == "exif-rotation":
        exif = Image.Exif()
        exif[0x0112] = 6  # viewers turn the stored pixels 90 degrees clockwise
        rgb.transpose(Image.Transpose.ROTATE_90).save(out, "JPEG", quality=90, exif=exif)


def make_planted(data: Path, folder: Path) -> tuple[list[tuple[str, str]], dict[tuple[str, str], str]]:
    """Plant copies and flat images; returns (duplicate pairs, pair -> transform)."""
    sources = sorted((data / "coco128/images/train2017").glob("*.jpg"))[:PLANTED_SOURCES]
    pairs, transform_of = [], {}
    for src in sources:
        for t in TRANSFORMS:
            name = f"planted/{src.stem}_{t.replace('%', 'pct').replace('+', 'plus')}.jpg"
            plant(src, folder.parent / name, t)
            pair = (str(src.relative_to(data)), name)
            pairs.append(pair)
            transform_of[pair] = t
    for colour, rgb in FLAT.items():
        names = []
        for size in ((64, 48), (200, 150), (640, 480)):
            names.append(f"planted/flat_{colour}_{size[0]}.png")
            Image.new("RGB", size, rgb).save(folder.parent / names[-1])
        pairs += list(itertools.combinations(names, 2))
    return pairs, transform_of


def scan(db: Path, folders: Iterable[Path]) -> None:
    args = [sys.executable, "-m", "imgindex", "scan", "--db", str(db), "-q", *(f"all={f}" for f in folders)]
    subprocess.run(args, check=True, capture_output=True, text=True)


def classes(keys: list[str], sha: dict[str, str], positives: list[tuple[str, str]]) -> dict[str, int]:
    """Ground-truth duplicate class of every image: positives and byte-identical files joined."""
    index = {k: n for n, k in enumerate(keys)}
    by_sha: dict[str, list[int]] = {}
    for k in keys:
        by_sha.setdefault(sha[k], []).append(index[k])
    edges = [(index[a], index[b]) for a, b in positives if a in index and b in index]
    edges += [(g[0], x) for g in by_sha.values() for x in g[1:]]
    label = {n: n for n in range(len(keys))}
    for comp in components(edges):
        for x in comp:
            label[x] = min(comp)
    return {k: label[index[k]] for k in keys}


def predicted(db_path: Path, k: int, confirmed: bool, key_of: dict[int, str]) -> dict[str, int]:
    db = store.open_db(db_path)
    pairs, kinds = near_index.all_pairs(db, k)
    db.close()
    keep = kinds != "rejected" if confirmed else np.ones(len(kinds), dtype=bool)
    group = {}
    for comp in components(zip(pairs.a[keep].tolist(), pairs.b[keep].tolist())):
        for x in comp:
            group[key_of[x]] = min(comp)
    return group


def together(group: dict[str, int], a: str, b: str) -> bool:
    return a in group and group.get(a) == group.get(b)


def scores(group: dict[str, int], truth: dict[str, int], sha: dict[str, str]) -> tuple[float, float, int, int]:
    """(precision, recall, true positives, false positives) over pairs, byte-identical pairs left out."""
    members: dict[int, list[str]] = {}
    for key, g in group.items():
        members.setdefault(g, []).append(key)
    tp = fp = 0
    for keys in members.values():
        for a, b in itertools.combinations(keys, 2):
            if sha[a] == sha[b]:
                continue
            if truth[a] == truth[b]:
                tp += 1
            else:
                fp += 1
    by_class: dict[int, list[str]] = {}
    for key, c in truth.items():
        by_class.setdefault(c, []).append(key)
    positives = sum(sha[a] != sha[b] for keys in by_class.values() for a, b in itertools.combinations(keys, 2))
    return tp / max(tp + fp, 1), tp / max(positives, 1), tp, fp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "planted").mkdir()
        planted_pairs, transform_of = make_planted(args.data, tmp_path / "planted")
        db_path = tmp_path / "index.db"
        scan(db_path, [args.data / f for f in FOLDERS] + [tmp_path / "planted"])
        db = store.open_db(db_path)
        rows = db.execute("SELECT id, path, sha256 FROM images WHERE error IS NULL").fetchall()
        db.close()

        def key(path: str) -> str:
            p = Path(path)
            return str(p.relative_to(tmp_path)) if p.is_relative_to(tmp_path) else str(p.relative_to(args.data))

        key_of = {r[0]: key(r[1]) for r in rows}
        sha = {key_of[r[0]]: r[2] for r in rows}
        coco8 = [
            (f"coco128/images/train2017/{p.name}", str(p.relative_to(args.data)))
            for p in sorted((args.data / "coco8/images").glob("*/*.jpg"))
        ]
        real = DUPLICATES + coco8
        truth = classes(sorted(sha), sha, real + planted_pairs)
        print(
            f"{len(rows)} readable images ({len(planted_pairs)} planted duplicate pairs) "
            f"in {len(set(truth.values()))} ground-truth classes\n"
        )
        print("| K | precision | recall | TP | FP | hard cases grouped | dHash only: precision | recall | FP | hard |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        per_transform = {}
        for k in KS:
            group = predicted(db_path, k, True, key_of)
            raw = predicted(db_path, k, False, key_of)
            p, r, tp, fp = scores(group, truth, sha)
            rp, rr, _, rfp = scores(raw, truth, sha)
            hard = sum(together(group, a, b) for a, b in HARD)
            raw_hard = sum(together(raw, a, b) for a, b in HARD)
            print(
                f"| {k} | {p:.3f} | {r:.3f} | {tp} | {fp} | {hard}/{len(HARD)} "
                f"| {rp:.3f} | {rr:.3f} | {rfp} | {raw_hard}/{len(HARD)} |"
            )
            per_transform[k] = {
                t: np.mean([together(group, a, b) for (a, b), tt in transform_of.items() if tt == t])
                for t in TRANSFORMS
            }
            per_transform[k]["real pairs"] = np.mean([together(group, a, b) for a, b in real])
            flats = [pair for pair in planted_pairs if "flat_" in pair[0]]
            per_transform[k]["flat same colour"] = np.mean([together(group, a, b) for a, b in flats])
        cols = list(per_transform[0])
        print("\nRecall per transform (share of planted copies grouped with their source)\n")
        print("| K | " + " | ".join(cols) + " |")
        print("|---|" + "---|" * len(cols))
        for k in KS:
            print(f"| {k} | " + " | ".join(f"{per_transform[k][c]:.2f}" for c in cols) + " |")


if __name__ == "__main__":
    main()
