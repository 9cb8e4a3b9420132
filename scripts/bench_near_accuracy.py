"""Near-duplicate accuracy of the shipped verdict: precision and recall at each K on real photos.

Scans, with the real `imgindex scan`, the public datasets of ../shared/data (imagededup, coco128,
coco8, raccoon_voc, bccd_voc, jenssegers, image_match_monalisa, skimage/sklearn samples, and the
chess_pieces_coco photos as the splits train/valid/test with their COCO labels) together with
copies this script plants from each of the 128 coco128 photos. Then, for each K, it builds the verdict
every output uses (`imgindex.near.verdict.compute(db, imgindex_rule(K))`) and counts a pair as a
predicted duplicate when both images are in one duplicate group.

Ground truth:

- positives (copies), planted, one per photo and transformation: JPEG re-encode at quality 50, 70,
  90; resize to 50 %; grayscale; brightness +10 % / -10 %; a semi-transparent watermark (white text
  at 50 % opacity, font 1/20 of the height, bottom-right corner); an opaque caption (solid white
  text, font 1/12 of the height, bottom-left); crops of 2 % and 5 % from the top-left and a centred
  5 % crop (2.5 % off every side); EXIF rotation (pixels turned 90 degrees with orientation tag 6,
  so a viewer shows the original). The real pairs listed in the folders' README.txt: resized /
  grey / alpha / WebP copies in imagededup, coco8 = re-encoded coco128 images, raccoon 50~52~74,
  21~45, 51~85 (caption), 186~199, BloodImage 37~38 (shifted field), the 5 versions of jenssegers'
  forest, the two Mona Lisa photos. Byte-identical files (sha256) are duplicates too, but are left
  out of the scores (trivial).
- hard negatives: every pair of the 289 chess photos (one board, a fixed tripod, pieces moved
  between shots), jenssegers' 3 office photos, the skimage stereo pair, the Mona Lisa remix, UKBench
  flipped and rotated copies;
- low-contrast hard negatives: the first 100 chess photos of train again with their contrast cut
  to 30 % (a grey spread of about 15 levels, as the least contrasted coco128 photo), without
  labels, so that the pixels alone grade them: every pair of two different photos among them and
  the originals is a hard negative; each with its own original is a copy (recoloured);
- every other pair is unrelated: not a duplicate.

Reported: precision and recall per K; at K = 8 the recall per transformation, the hard negatives
(in one duplicate group, in one scene), the grades near_pairs gives the chess pairs by pixels alone
against the verdict's grades once labels are read; DataGradients' rule (equal 64-bit dHash) on the
same sets for comparison.

    .venv/bin/python scripts/bench_near_accuracy.py                  # prints the markdown tables
    .venv/bin/python scripts/bench_near_accuracy.py --data /path/to/shared/data
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlite_utils
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

from imgindex import store
from imgindex.near import pairs as near_pairs
from imgindex.near import verdict

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FOLDERS = {
    "imagededup": "imagededup_testdata",
    "coco128": "coco128/images/train2017",
    "coco8": "coco8/images",
    "raccoon": "raccoon_voc/images",
    "bccd": "bccd_voc/JPEGImages",
    "jenssegers": "jenssegers_imagehash_testdata",
    "monalisa": "image_match_monalisa",
    "samples": "skimage_sklearn_samples",
    "train": "chess_pieces_coco/train",
    "valid": "chess_pieces_coco/valid",
    "test": "chess_pieces_coco/test",
}
CHESS = "chess_pieces_coco/"
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
    "jpeg-q70",
    "jpeg-q90",
    "resize-50%",
    "grayscale",
    "brightness+10%",
    "brightness-10%",
    "watermark",
    "caption",
    "crop-2%",
    "crop-5%",
    "crop-centre-5%",
    "exif-rotation",
]
PLANTED_SOURCES = 128
DIM_SOURCES, DIM_CONTRAST = 100, 0.3
KS = [0, 4, 8, 12, 16]
DETAIL_K = 8
WATERMARK, CAPTION = "© imgindex sample", "Sample caption, 2024"

Pair = tuple[str, str]


def pair(a: str, b: str) -> Pair:
    return (a, b) if a < b else (b, a)


def overlay_text(rgb: Image.Image, text: str, height: int, opacity: int, corner: str) -> Image.Image:
    """rgb with white text of the given font size and opacity (0-255) in a bottom corner."""
    font = ImageFont.load_default(size=height)
    layer = Image.new("RGBA", rgb.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    left, _, right, bottom = draw.textbbox((0, 0), text, font=font)
    margin = max(rgb.height // 50, 2)
    x = margin - left if corner == "left" else rgb.width - margin - right
    draw.text((x, rgb.height - margin - bottom), text, font=font, fill=(255, 255, 255, opacity))
    return Image.alpha_composite(rgb.convert("RGBA"), layer).convert("RGB")


def crop(rgb: Image.Image, share: float, centred: bool) -> Image.Image:
    """rgb without share of each axis: from the left and top, or half from every side."""
    w, h = rgb.size
    dx, dy = round(w * share), round(h * share)
    if centred:
        return rgb.crop((dx // 2, dy // 2, w - (dx - dx // 2), h - (dy - dy // 2)))
    return rgb.crop((dx, dy, w, h))


def transformed(rgb: Image.Image, transform: str) -> Image.Image:
    """The copy of rgb a transformation makes (JPEG quality and EXIF are left to plant)."""
    w, h = rgb.size
    if transform == "resize-50%":
        return rgb.resize((w // 2, h // 2), Image.Resampling.LANCZOS)
    if transform == "grayscale":
        return rgb.convert("L")
    if transform.startswith("brightness"):
        return ImageEnhance.Brightness(rgb).enhance(1.1 if "+" in transform else 0.9)
    if transform == "watermark":
        return overlay_text(rgb, WATERMARK, max(h // 20, 8), 128, "right")
    if transform == "caption":
        return overlay_text(rgb, CAPTION, max(h // 12, 8), 255, "left")
    if transform.startswith("crop"):
        return crop(rgb, 0.05 if "5%" in transform else 0.02, "centre" in transform)
    if transform == "exif-rotation":
        return rgb.transpose(Image.Transpose.ROTATE_90)
    return rgb


def plant(source: Path, out: Path, transform: str) -> None:
    """Write a transformed copy of source."""
    with Image.open(source) as im:
        rgb = im.convert("RGB")
    quality = int(transform[6:]) if transform.startswith("jpeg-q") else 90
    exif = Image.Exif()
    if transform == "exif-rotation":
        exif[0x0112] = 6  # viewers turn the stored pixels 90 degrees clockwise
    transformed(rgb, transform).save(out, "JPEG", quality=quality, exif=exif)


def make_planted(data: Path, folder: Path) -> dict[Pair, str]:
    """Plant copies; returns pair (source, copy) -> transformation."""
    sources = sorted((data / "coco128/images/train2017").glob("*.jpg"))[:PLANTED_SOURCES]
    transform_of = {}
    for src in sources:
        for t in TRANSFORMS:
            name = f"planted/{src.stem}_{t.replace('%', 'pct').replace('+', 'plus')}.jpg"
            plant(src, folder.parent / name, t)
            transform_of[pair(str(src.relative_to(data)), name)] = t
    return transform_of


def make_dim(data: Path, folder: Path) -> list[Pair]:
    """Low-contrast copies of chess photos; returns the pairs (original, copy)."""
    folder.mkdir(parents=True)
    sources = sorted((data / FOLDERS["train"]).glob("*.jpg"))[:DIM_SOURCES]
    made = []
    for src in sources:
        with Image.open(src) as im:
            dim = ImageEnhance.Contrast(im.convert("RGB")).enhance(DIM_CONTRAST)
        dim.save(folder / src.name, "JPEG", quality=90)
        made.append(pair(str(src.relative_to(data)), f"{folder.name}/{src.name}"))
    return made


def scan(db: Path, folders: dict[str, Path]) -> None:
    """The real CLI; the chess splits' COCO json is detected."""
    args = [sys.executable, "-m", "imgindex", "scan", "--db", str(db), "-q", *(f"{s}={f}" for s, f in folders.items())]
    subprocess.run(args, check=True, capture_output=True, text=True)


def positive_pairs(keys: list[str], sha: dict[str, str], listed: Iterable[Pair]) -> set[Pair]:
    """Ground-truth duplicate pairs: classes joined by the listed pairs and by identical bytes,
    every two members of a class; byte-identical pairs left out."""
    index = {k: n for n, k in enumerate(keys)}
    by_sha: dict[str, list[int]] = {}
    for k in keys:
        by_sha.setdefault(sha[k], []).append(index[k])
    edges = [(index[a], index[b]) for a, b in listed if a in index and b in index]
    edges += [(g[0], x) for g in by_sha.values() for x in g[1:]]
    out = set()
    ends = np.array(edges, dtype=np.int64).reshape(-1, 2)
    for comp in verdict.components(ends[:, 0], ends[:, 1]):
        members = sorted(keys[x] for x in comp)
        out |= {(a, b) for a, b in itertools.combinations(members, 2) if sha[a] != sha[b]}
    return out


def together(groups: list[verdict.Group], key: dict[str, str]) -> set[Pair]:
    """Every pair of images sharing a group, as sorted keys."""
    out = set()
    for g in groups:
        members = sorted(key[m.path] for m in g.members if m.path in key)
        out |= set(itertools.combinations(members, 2))
    return out


@dataclass(frozen=True)
class Truth:
    sha: dict[str, str]
    positives: set[Pair]
    transform_of: dict[Pair, str]
    real: dict[str, list[Pair]]
    chess: set[Pair]
    hard: set[Pair]
    dim: set[Pair]

    def listed(self) -> set[Pair]:
        """The planted and listed real pairs themselves (not the other pairs of their classes)."""
        pairs = set(self.transform_of) | {p for ps in self.real.values() for p in ps}
        return {p for p in pairs if self.sha[p[0]] != self.sha[p[1]]}


@dataclass(frozen=True)
class Score:
    precision: float
    recall: float
    listed_recall: float
    tp: int
    fp: int
    chess: int
    hard: int
    dim: int
    hard_set_precision: float


def score(predicted: set[Pair], truth: Truth) -> Score:
    """Precision and recall over pairs, byte-identical pairs left out; false positives among the
    chess and HARD pairs; precision restricted to positives, chess and HARD pairs."""
    found = {p for p in predicted if truth.sha[p[0]] != truth.sha[p[1]]}
    tp = len(found & truth.positives)
    fp = len(found) - tp
    chess, hard = len(found & truth.chess - truth.positives), len(found & truth.hard - truth.positives)
    dim = len(found & truth.dim - truth.positives)
    return Score(
        tp / max(tp + fp, 1),
        tp / max(len(truth.positives), 1),
        len(found & truth.listed()) / max(len(truth.listed()), 1),
        tp,
        fp,
        chess,
        hard,
        dim,
        tp / max(tp + chess + hard, 1),
    )


def share(found: set[Pair], wanted: Iterable[Pair]) -> str:
    pairs = set(wanted)
    hits = len(found & pairs)
    return f"{hits / max(len(pairs), 1):.3f} ({hits}/{len(pairs)})"


def print_per_k(scores: dict[int, Score], truth: Truth) -> None:
    print("Duplicates = pairs in one duplicate group of `verdict.compute(db, imgindex_rule(K))`; recall over")
    print(f"every pair of a ground-truth class, and over the {len(truth.listed())} planted and listed pairs alone\n")
    print(
        f"| K | precision | recall | recall, listed pairs | TP | FP | chess pairs grouped (of {len(truth.chess)}) "
        f"| HARD pairs grouped (of {len(truth.hard)}) | precision on positives + chess + HARD "
        f"| low-contrast chess pairs grouped (of {len(truth.dim)}) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for k, s in scores.items():
        print(
            f"| {k} | {s.precision:.4f} | {s.recall:.4f} | {s.listed_recall:.4f} | {s.tp} | {s.fp} | {s.chess} | {s.hard} "
            f"| {s.hard_set_precision:.4f} | {s.dim} |"
        )


def print_recall(found: set[Pair], graded: set[Pair], truth: Truth) -> None:
    print(f"\nRecall per transformation at K = {DETAIL_K}: copies in one duplicate group with their source; and the")
    print("pair itself graded a duplicate (labels applied) before groups are cut so that every two members pass\n")
    print("| transformation | recall (one duplicate group) | pair graded a duplicate |")
    print("|---|---|---|")
    rows = [(t, [p for p, tt in truth.transform_of.items() if tt == t]) for t in TRANSFORMS]
    rows += [(name, [p for p in pairs if truth.sha[p[0]] != truth.sha[p[1]]]) for name, pairs in truth.real.items()]
    rows += [("all planted and listed pairs", sorted(truth.listed()))]
    for name, pairs in rows:
        print(f"| {name} | {share(found, pairs)} | {share(graded, pairs)} |")


def print_hard(found: set[Pair], scenes: set[Pair], conflicts: set[Pair], s: Score, truth: Truth) -> None:
    print(f"\nHard negatives at K = {DETAIL_K}\n")
    print("| pairs | in one duplicate group (false positives) | in one scene |")
    print("|---|---|---|")
    print(f"| chess photos, every pair | {share(found, truth.chess)} | {share(scenes, truth.chess)} |")
    print(f"| HARD list | {share(found, truth.hard)} | {share(scenes, truth.hard)} |")
    print(
        f"| chess at 30 % contrast, pairs of different photos | {share(found, truth.dim)} | {share(scenes, truth.dim)} |"
    )
    unrelated = s.fp - s.chess - s.hard - s.dim
    print(f"| unrelated (every other non-duplicate pair) | {unrelated} | - |")
    print(
        f"\nOf the {len(found & truth.chess)} chess pairs in one duplicate group, {len(conflicts & truth.chess)} have labels "
        "that disagree (listed as label conflicts: their pixels agree everywhere at 32x32)"
    )
    print(
        f"\nPrecision of duplicates on positives + chess pairs + HARD pairs: {s.hard_set_precision:.4f} "
        f"({s.tp} true, {s.chess + s.hard} false); with the low-contrast chess pairs as well: "
        f"{s.tp / max(s.tp + s.chess + s.hard + s.dim, 1):.4f} ({s.chess + s.hard + s.dim} false)"
    )


def grades(db: sqlite_utils.Database, key_of: dict[int, str]) -> tuple[dict[Pair, str], dict[Pair, str]]:
    """The candidate pairs within DETAIL_K bits: near_pairs' kind (pixels alone), the verdict's grade
    (labels applied)."""
    pairs, kinds = near_pairs.all_pairs(db, DETAIL_K)
    by_pixels = {pair(key_of[a], key_of[b]): str(k) for a, b, k in zip(pairs.a.tolist(), pairs.b.tolist(), kinds.kind)}
    graded = verdict._graded_pairs(db, DETAIL_K)  # what verdict.compute groups: labels applied
    with_labels = {pair(key_of[a], key_of[b]): g for a, b, g in zip(graded.a, graded.b, graded.grade)}
    return by_pixels, with_labels


def print_chess_grades(by_pixels: dict[Pair, str], with_labels: dict[Pair, str], truth: Truth) -> None:
    """The chess candidate pairs by near_pairs' kind (pixels alone) and by the verdict's grade."""
    pixels = Counter(k for p, k in by_pixels.items() if p in truth.chess)
    labels = Counter(g for p, g in with_labels.items() if p in truth.chess)
    total = sum(pixels.values())
    print(f"\nChess candidate pairs within {DETAIL_K} dHash bits ({total} of {len(truth.chess)} pairs)\n")
    print("| grade | by pixels alone (near_pairs.kind) | with labels (verdict) |")
    print("|---|---|---|")
    for kind in near_pairs.KINDS:
        print(f"| {kind} | {pixels[kind]} | {labels[kind]} |")


def print_datagradients(imgindex: Score, dg: Score, truth: Truth) -> None:
    print("\nDataGradients' rule (equal 64-bit dHash, no verification) on the same sets\n")
    print(
        "| rule | precision | recall | TP | FP | chess pairs grouped | HARD pairs grouped "
        "| precision on positives + chess + HARD | low-contrast chess pairs grouped |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, s in ((f"imgindex, K = {DETAIL_K}", imgindex), ("DataGradients", dg)):
        print(
            f"| {name} | {s.precision:.4f} | {s.recall:.4f} | {s.tp} | {s.fp} | {s.chess}/{len(truth.chess)} "
            f"| {s.hard}/{len(truth.hard)} | {s.hard_set_precision:.4f} | {s.dim}/{len(truth.dim)} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--keep", type=Path, help="write the planted copies and the index here and keep them")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp) if args.keep is None else args.keep.resolve()
        (tmp_path / "planted").mkdir(parents=True)
        transform_of = make_planted(args.data, tmp_path / "planted")
        dim_pairs = make_dim(args.data, tmp_path / "dim")
        db_path = tmp_path / "index.db"
        folders = {split: args.data / f for split, f in FOLDERS.items()} | {
            "planted": tmp_path / "planted",
            "dim": tmp_path / "dim",
        }
        scan(db_path, folders)
        db = store.open_db(db_path)
        rows = db.execute("SELECT id, path, sha256 FROM images WHERE error IS NULL").fetchall()
        db.close()

        def relative(path: str) -> str:
            p = Path(path)
            return str(p.relative_to(tmp_path)) if p.is_relative_to(tmp_path) else str(p.relative_to(args.data))

        key = {r[1]: relative(r[1]) for r in rows}
        key_of = {r[0]: key[r[1]] for r in rows}
        sha = {key[r[1]]: r[2] for r in rows}
        coco8 = [
            pair(f"coco128/images/train2017/{p.name}", str(p.relative_to(args.data)))
            for p in sorted((args.data / "coco8/images").glob("*/*.jpg"))
        ]
        real = {
            "real pairs (README lists)": [pair(*p) for p in DUPLICATES],
            "coco8 re-encodes of coco128": coco8,
            "chess photos at 30 % contrast, with their originals": dim_pairs,
        }
        chess = sorted(k for k in sha if k.startswith(CHESS))
        dim = sorted(k for k in sha if k.startswith("dim/"))
        truth = Truth(
            sha=sha,
            positives=positive_pairs(sorted(sha), sha, [*transform_of, *DUPLICATES, *coco8, *dim_pairs]),
            transform_of=transform_of,
            real=real,
            chess=set(itertools.combinations(chess, 2)),
            hard={pair(*p) for p in HARD},
            dim={pair(a, b) for a in dim for b in [*dim, *chess] if a != b} - set(dim_pairs),
        )
        print(
            f"{len(rows)} readable images: {len(transform_of)} planted copies of {PLANTED_SOURCES} coco128 photos, "
            f"{len(chess)} chess photos; {len(truth.positives)} duplicate pairs (byte-identical left out), "
            f"{len(truth.chess)} chess pairs, {len(truth.hard)} HARD pairs\n"
        )
        db = store.open_db(db_path)
        verdicts = {k: verdict.compute(db, verdict.imgindex_rule(k)) for k in KS}
        scores = {k: score(together(v.groups, key), truth) for k, v in verdicts.items()}
        v = verdicts[DETAIL_K]
        found, scenes = together(v.groups, key), together(v.scenes, key)
        conflicts = {pair(key[c.a.path], key[c.b.path]) for c in v.conflicts}
        dg = score(together(verdict.compute(db, verdict.datagradients_rule()).groups, key), truth)
        by_pixels, with_labels = grades(db, key_of)
        db.close()
        print_per_k(scores, truth)
        duplicates = {p for p, g in with_labels.items() if g in near_pairs.DUPLICATE_KINDS}
        print_recall(found, duplicates, truth)
        print_hard(found, scenes, conflicts, scores[DETAIL_K], truth)
        print_chess_grades(by_pixels, with_labels, truth)
        print_datagradients(scores[DETAIL_K], dg, truth)
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
