"""Image-quality flags against a labelled set: imgindex and cleanvision 0.3.7 side by side, and their run times.

Writes, into a temporary folder scanned as ONE split, the 128 real photos of coco128 (Flickr) and
versions of them made with known faults (sources drawn with a fixed seed from the colour photos of
mean grey level 80-150 that are not in EXCEPTIONS; JPEG quality 90 throughout):

- untouched: the 128 photos copied byte for byte, expected to carry no flag except what they truly
  have, listed in EXCEPTIONS (found by looking at the photos, not by asking either tool): the four
  black-and-white photos (one mode L JPEG, three RGB JPEGs with equal channels) are grayscale.
- dark: pixel values x0.12, x0.2, x0.25 (8 photos each); night photos: x0.08 with 6-12 small warm
  lights (dots and lit windows, under 1 % of the pixels; 4 photos). A gamma of 3 (8 photos) is made
  too and its recall printed apart, not scored: it keeps the highlights, and the versions that look
  dark (mean grey under 40) are as dark as the low-key photos this set holds as not dark
  (000000000326, 000000000589, mean grey 32-33), so no brightness rule can be right on both.
- light: values x3 and x4 clipped, and +170 clipped (8 photos each).
  A dark or light version is kept only if it looks the part (mean grey under 40, over 190 of 255),
  else the next photo drawn is used: a gamma or a gain leaves a bright sky bright and dark walls
  dark, and about half of the gamma-3 versions looked like normal contrasty photos.
- blurry: Gaussian blur of radius 1.5 %, 2 % and 3 % of the shorter side (8 photos each; the
  radii in px for a 640x480 photo are printed). imgindex measures sharpness on the 1/8 JPEG draft,
  which sees blur from about 1.5 % of the shorter side (README, "Image quality"); finer blurs, of
  0.5 %, 0.8 % and 1 %, are made too and their recall printed apart, but they are not scored
  (blurry is neither expected of them nor counted against a tool).
- low_information: the photo blended 4 % with its mean colour; a blur of 20 % of the shorter side
  posterized to 3 colours (6 photos each). Hard case: sharp crops at full resolution of
  plain surfaces of four photos (PLAIN_CROPS: blue sky, white sky, black curtain, tennis court):
  low_information, and NOT blurry.
- grayscale: 8 photos turned grey, 4 saved as mode L JPEGs, 4 as RGB JPEGs with equal channels.
- odd_aspect_ratio: 4 photos stretched to 4:1 and to 1:4 (pixel area kept).
- odd_size: 8 photos resized to 1/8 of the side (tiny) and 4 to 4x (huge).
- hard negatives: 4 logos on white (a coloured shape and text covering 10-25 % of a 640x480 white
  canvas): not light; the untouched photos in HARD_NEGATIVES (naturally dark but normal, a shallow
  depth of field, birds against a bright sky): no flag.

"Don't care" flags are not counted against a tool when it raises them, nor expected:

- flattened images and plain crops: dark and light (they take their mean colour's brightness);
  flattened images: blurry too (no contrast left to judge sharpness by); plain crops: odd_size
  (they are 235-500 px wide among photos of 640), and grayscale for the two without colour (the
  grey-white sky, mean RGB 213/214/214, and the black curtain);
- tiny images: blurry (80x60 px); huge images: blurry (a 4x upscale is soft at full resolution);
- logos: low_information (a few flat colours);
- untouched, in EXCEPTIONS: 000000000359 grayscale (a black-and-white photo with a faint warm tone,
  channels 3-4 levels apart); 000000000357, 000000000472, 000000000597 odd_aspect_ratio (panoramas
  of 2.6-2.9:1); 000000000322 dark and blurry (a dusk photo, mean grey 25 of 255, with camera shake).

imgindex runs as its CLI (`imgindex scan --db DB train=FOLDER -q`, timed) and its flags are read
from the `quality` view; cleanvision runs in a child process with its default parameters
(`Imagelab(data_path=FOLDER).find_issues({dark, light, blurry, low_information, odd_aspect_ratio,
odd_size, grayscale})`), timed as the whole child process and as find_issues alone. Precision =
TP / (TP + FP) over all images, an image's don't-care flags left out; recall = TP / positives.
imgindex's `outlier` flag has no counterpart in cleanvision: only its count is reported.

    .venv/bin/python scripts/bench_quality.py                  # prints the markdown tables
    .venv/bin/python scripts/bench_quality.py --data /path/to/shared/data --cleanvision-python /path/to/python

cleanvision is not a dependency of imgindex: install it in a separate environment, e.g.
`python3 -m venv ../cvenv && ../cvenv/bin/pip install cleanvision==0.3.7` (the default
--cleanvision-python is ../cvenv/bin/python next to the repository, else this Python if it can
import cleanvision; without one, imgindex is reported alone).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
DEFAULT_CLEANVISION = ROOT.parent / "cvenv" / "bin" / "python"
PHOTOS = "coco128/images/train2017"
SEED = 20241203
QUALITY = 90
FLAGS = ("dark", "light", "blurry", "low_information", "odd_aspect_ratio", "odd_size", "grayscale")

# Untouched photos: stem -> (expected flags, don't-care flags), found by looking at the photos.
EXCEPTIONS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "000000000086": (frozenset({"grayscale"}), frozenset()),  # black and white, mode L
    "000000000328": (frozenset({"grayscale"}), frozenset()),  # black and white, equal RGB channels
    "000000000542": (frozenset({"grayscale"}), frozenset()),  # black and white, equal RGB channels
    "000000000634": (frozenset({"grayscale"}), frozenset()),  # black and white, equal RGB channels
    "000000000359": (frozenset(), frozenset({"grayscale"})),  # black and white with a faint warm tone
    "000000000357": (frozenset(), frozenset({"odd_aspect_ratio"})),  # 640x218 panorama
    "000000000472": (frozenset(), frozenset({"odd_aspect_ratio"})),  # 640x226 panorama
    "000000000597": (frozenset(), frozenset({"odd_aspect_ratio"})),  # 640x248 panorama
    "000000000322": (frozenset(), frozenset({"dark", "blurry"})),  # dusk, mean grey 25, camera shake
}
# Untouched photos that look like a fault and are not one (expected to carry no flag): stem -> the
# flag they could be mistaken for.
HARD_NEGATIVES = {
    "000000000326": "dark",  # dark room, lit face and shirt (mean grey 32)
    "000000000589": "dark",  # night, flash-lit player (mean grey 33)
    "000000000564": "dark",  # black backdrop over a lit court (mean grey 51)
    "000000000562": "blurry",  # toothbrushes, shallow depth of field
    "000000000143": "light",  # birds against a bright overcast sky
}
# Plain surfaces, cropped at full resolution: stem -> (left, top, right, bottom).
PLAIN_CROPS = {
    "000000000531": (0, 0, 400, 200),  # blue sky
    "000000000049": (0, 0, 280, 160),  # white overcast sky
    "000000000564": (0, 0, 500, 180),  # black curtain
    "000000000415": (120, 290, 355, 490),  # green tennis court
}
COLOURLESS_CROPS = {"000000000049", "000000000564"}  # grey-white sky, black curtain: grayscale is true too
DARK = {"x0.12": 0.12, "x0.2": 0.2, "x0.25": 0.25}
LIGHT = {"x3": (3.0, 0.0), "x4": (4.0, 0.0), "+170": (1.0, 170.0)}
BLUR_SHARES = (0.005, 0.008, 0.01, 0.015, 0.02, 0.03)
BLUR_REACH = 0.015  # imgindex measures sharpness on the 1/8 draft: blur from 1.5 % of the shorter side
LOW_KEY = "dark_gamma"  # gamma-3 versions: scored apart, dark neither expected nor counted against
FINE_BLUR = "blurry_fine"  # the finer radii: scored apart, blurry neither expected nor counted against
PER_VARIANT = 8
DARK_MEAN, LIGHT_MEAN = 40, 190
FLAT_DONT_CARE = frozenset({"dark", "light", "blurry"})
CHILD = """
import json, os, sys, time
from cleanvision import Imagelab
folder, out, types = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
lab = Imagelab(data_path=folder)
started = time.perf_counter()
lab.find_issues({t: {} for t in types})
seconds = time.perf_counter() - started
flags = {os.path.basename(str(p)): [t for t in types if bool(row[f"is_{t}_issue"])] for p, row in lab.issues.iterrows()}
with open(out, "w") as f:
    json.dump({"seconds": seconds, "flags": flags}, f)
"""


@dataclass(frozen=True)
class Item:
    """One image of the labelled set: its file name in the split folder and what it should be flagged."""

    name: str
    group: str
    variant: str
    expected: frozenset[str] = frozenset()
    dont_care: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ToolRun:
    """One tool's flags per file name, its wall-clock seconds and, if known, the seconds of its work alone."""

    name: str
    flags: dict[str, set[str]]
    seconds: float
    inner_seconds: float | None = None
    outliers: int | None = None


def rgb_of(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")


def save(im: Image.Image, folder: Path, name: str) -> None:
    im.save(folder / name, "JPEG", quality=QUALITY)


def from_array(a: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8))


def pixels(im: Image.Image) -> np.ndarray:
    return np.asarray(im, dtype=np.float64)


def darkened(im: Image.Image, factor: float) -> Image.Image:
    return from_array(pixels(im) * factor)


def gamma(im: Image.Image, g: float) -> Image.Image:
    return from_array(255.0 * (pixels(im) / 255.0) ** g)


def lightened(im: Image.Image, factor: float, offset: float) -> Image.Image:
    return from_array(pixels(im) * factor + offset)


def blur_radius(size: tuple[int, int], share: float) -> float:
    return share * min(size)


def blurred(im: Image.Image, share: float) -> Image.Image:
    return im.filter(ImageFilter.GaussianBlur(blur_radius(im.size, share)))


def night(im: Image.Image, rng: random.Random) -> Image.Image:
    """A strongly darkened photo with a few small warm lights: round dots and lit windows."""
    out = darkened(im, 0.08)
    draw = ImageDraw.Draw(out)
    w, h = out.size
    for _ in range(rng.randint(6, 12)):
        x, y = rng.randrange(10, w - 10), rng.randrange(10, h - 10)
        colour = rng.choice([(255, 236, 190), (255, 210, 140), (250, 250, 255)])
        if rng.random() < 0.5:
            r = rng.randint(2, 4)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
        else:
            draw.rectangle((x, y, x + rng.randint(4, 7), y + rng.randint(5, 9)), fill=colour)
    return out


def blended_flat(im: Image.Image, share: float = 0.04) -> Image.Image:
    """The photo blended `share` with its mean colour: near-constant."""
    a = pixels(im)
    mean = a.reshape(-1, 3).mean(axis=0)
    return from_array(mean + share * (a - mean))


def posterized_flat(im: Image.Image, colours: int = 3) -> Image.Image:
    """A blur of 20 % of the shorter side posterized to `colours` colours (PIL's median cut)."""
    return blurred(im, 0.20).quantize(colors=colours).convert("RGB")


def stretched(im: Image.Image, ratio: float) -> Image.Image:
    """Resized to width/height = ratio, the pixel area kept."""
    area = im.width * im.height
    w = round((area * ratio) ** 0.5)
    return im.resize((w, round(area / w)), Image.Resampling.BICUBIC)


def scaled(im: Image.Image, factor: float) -> Image.Image:
    size = (max(round(im.width * factor), 1), max(round(im.height * factor), 1))
    return im.resize(size, Image.Resampling.LANCZOS if factor < 1 else Image.Resampling.BICUBIC)


def logo(rng: random.Random) -> Image.Image:
    """A coloured shape and a word on a white 640x480 canvas (10-25 % of its pixels)."""
    canvas = Image.new("RGB", (640, 480), "white")
    draw = ImageDraw.Draw(canvas)
    colour = rng.choice([(200, 30, 40), (20, 90, 180), (30, 140, 60), (240, 150, 0)])
    r = rng.randint(105, 125)
    cx, cy = 320, 190
    if rng.random() < 0.5:
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    else:
        draw.rounded_rectangle((cx - r, cy - r, cx + r, cy + r), radius=r // 4, fill=colour)
    font = ImageFont.load_default(size=56)
    word = rng.choice(["ACME", "Nordvik", "Lumen Co", "Pix & Co"])
    left, _, right, _ = draw.textbbox((0, 0), word, font=font)
    draw.text((320 - (right - left) // 2, 310), word, font=font, fill=(40, 40, 40))
    return canvas


def ink_share(im: Image.Image) -> float:
    return float((pixels(im).min(axis=2) < 250).mean())


def is_grey(path: Path) -> bool:
    with Image.open(path) as im:
        if im.mode in ("L", "LA", "1", "I", "I;16", "F"):
            return True
        a = np.asarray(im.convert("RGB"))
    return bool((a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all())


def mean_grey(path: Path) -> float:
    with Image.open(path) as im:
        return float(np.asarray(im.convert("L")).mean())


def sources(photos: list[Path]) -> list[Path]:
    """The colour photos of mean grey level 80-150 outside EXCEPTIONS and HARD_NEGATIVES: the ones altered."""
    skip = set(EXCEPTIONS) | set(HARD_NEGATIVES)
    return [p for p in photos if p.stem not in skip and not is_grey(p) and 80 <= mean_grey(p) <= 150]


def copy_untouched(photos: list[Path], folder: Path) -> list[Item]:
    items = []
    for p in photos:
        shutil.copyfile(p, folder / p.name)
        expected, dont_care = EXCEPTIONS.get(p.stem, (frozenset(), frozenset()))
        items.append(
            Item(p.name, "untouched", "hard negative" if p.stem in HARD_NEGATIVES else "photo", expected, dont_care)
        )
    return items


Transform = Callable[[Image.Image], Image.Image]


def looks_the_part(group: str, im: Image.Image) -> bool:
    """Whether a dark or light version looks dark or light (mean grey under 40, over 190); other groups pass."""
    if group not in ("dark", LOW_KEY, "light"):
        return True
    grey = float(np.asarray(im.convert("L")).mean())
    return grey > LIGHT_MEAN if group == "light" else grey < DARK_MEAN


def make_variants(
    pool: list[Path],
    folder: Path,
    rng: random.Random,
    group: str,
    variants: dict[str, Transform],
    count: int,
    dont_care: frozenset[str] = frozenset(),
) -> list[Item]:
    """`count` photos drawn from pool per variant, each transformed and saved with the group as expected flag;
    a dark or light version that does not look the part is replaced by the next photo drawn."""
    expected = frozenset({group}) if group in FLAGS else frozenset()
    items = []
    for variant, transform in variants.items():
        made = 0
        for p in rng.sample(pool, len(pool)):
            if made == count:
                break
            im = transform(rgb_of(p))
            if not looks_the_part(group, im):
                continue
            name = f"{group}_{variant}_{p.stem}.jpg"
            save(im, folder, name)
            items.append(Item(name, group, variant, expected, dont_care))
            made += 1
    return items


def make_night(pool: list[Path], folder: Path, rng: random.Random) -> list[Item]:
    items = []
    for p in rng.sample(pool, 4):
        name = f"dark_night_{p.stem}.jpg"
        save(night(rgb_of(p), rng), folder, name)
        items.append(Item(name, "dark", "night", frozenset({"dark"})))
    return items


def make_flat(pool: list[Path], folder: Path, rng: random.Random) -> list[Item]:
    items = make_variants(pool, folder, rng, "low_information", {"blend4%": blended_flat}, 6)
    items += make_variants(pool, folder, rng, "low_information", {"blur-posterize": posterized_flat}, 6)
    return [Item(i.name, i.group, i.variant, i.expected, FLAT_DONT_CARE) for i in items]


def make_plain_crops(photos: dict[str, Path], folder: Path) -> list[Item]:
    items = []
    for stem, box in PLAIN_CROPS.items():
        name = f"low_information_plain-crop_{stem}.jpg"
        save(rgb_of(photos[stem]).crop(box), folder, name)
        dont_care = {"dark", "light", "odd_size"} | ({"grayscale"} if stem in COLOURLESS_CROPS else set())
        items.append(Item(name, "low_information", "plain crop", frozenset({"low_information"}), frozenset(dont_care)))
    return items


def make_grey(pool: list[Path], folder: Path, rng: random.Random) -> list[Item]:
    items = []
    for n, p in enumerate(rng.sample(pool, 8)):
        grey = rgb_of(p).convert("L")
        variant = "mode-L" if n % 2 == 0 else "RGB-equal"
        name = f"grayscale_{variant}_{p.stem}.jpg"
        save(grey if variant == "mode-L" else grey.convert("RGB"), folder, name)
        items.append(Item(name, "grayscale", variant, frozenset({"grayscale"})))
    return items


def make_sizes(pool: list[Path], folder: Path, rng: random.Random) -> list[Item]:
    tiny = make_variants(pool, folder, rng, "odd_size", {"tiny": lambda im: scaled(im, 1 / 8)}, 8)
    huge = make_variants(pool, folder, rng, "odd_size", {"huge": lambda im: scaled(im, 4)}, 4)
    return [Item(i.name, i.group, i.variant, i.expected, frozenset({"blurry"})) for i in tiny + huge]


def make_logos(folder: Path, rng: random.Random) -> list[Item]:
    items = []
    for n in range(4):
        im = logo(rng)
        name = f"logo_on_white_{n}.jpg"
        save(im, folder, name)
        items.append(
            Item(name, "logo on white", f"{ink_share(im):.0%} ink", frozenset(), frozenset({"low_information"}))
        )
    return items


def make_set(data: Path, folder: Path) -> list[Item]:
    """Write the labelled set into folder; returns its items."""
    photos = sorted((data / PHOTOS).glob("*.jpg"))
    rng = random.Random(SEED)
    pool = sources(photos)
    items = copy_untouched(photos, folder)
    items += make_variants(
        pool, folder, rng, "dark", {k: lambda im, f=f: darkened(im, f) for k, f in DARK.items()}, PER_VARIANT
    )
    lowkey = {"gamma3": lambda im: gamma(im, 3.0)}
    items += make_variants(pool, folder, rng, LOW_KEY, lowkey, PER_VARIANT, frozenset({"dark"}))
    items += make_night(pool, folder, rng)
    light = {k: lambda im, m=m, o=o: lightened(im, m, o) for k, (m, o) in LIGHT.items()}
    items += make_variants(pool, folder, rng, "light", light, PER_VARIANT)
    blur = {f"{s:.1%}": lambda im, s=s: blurred(im, s) for s in BLUR_SHARES if s >= BLUR_REACH}
    items += make_variants(pool, folder, rng, "blurry", blur, PER_VARIANT)
    fine = {f"{s:.1%}": lambda im, s=s: blurred(im, s) for s in BLUR_SHARES if s < BLUR_REACH}
    items += make_variants(pool, folder, rng, FINE_BLUR, fine, PER_VARIANT, frozenset({"blurry"}))
    items += make_flat(pool, folder, rng)
    items += make_plain_crops({p.stem: p for p in photos}, folder)
    items += make_grey(pool, folder, rng)
    aspect = {"4:1": lambda im: stretched(im, 4.0), "1:4": lambda im: stretched(im, 0.25)}
    items += make_variants(pool, folder, rng, "odd_aspect_ratio", aspect, 4)
    items += make_sizes(pool, folder, rng)
    return items + make_logos(folder, rng)


def imgindex_flags(db_path: Path) -> dict[str, set[str]]:
    """path -> flags, from imgindex's `quality` view (flags: comma-separated names, '' when none)."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT path, flags FROM quality").fetchall()
    return {str(path): {f for f in (flags or "").split(",") if f} for path, flags in rows}


def has_quality_view(db_path: Path) -> bool:
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        found = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'view' AND name = 'quality'").fetchone()
    return found is not None


def run_imgindex(folder: Path, db_path: Path) -> ToolRun:
    """The real CLI on a new index, timed; no flags when this imgindex has no `quality` view."""
    args = [sys.executable, "-m", "imgindex", "scan", "--db", str(db_path), "-q", f"train={folder}"]
    started = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if not has_quality_view(db_path):
        return ToolRun("imgindex", {}, seconds)
    flags = {Path(p).name: f for p, f in imgindex_flags(db_path).items()}
    outliers = sum("outlier" in f for f in flags.values())
    return ToolRun("imgindex", {n: f - {"outlier"} for n, f in flags.items()}, seconds, None, outliers)


def median_run(runs: list[ToolRun]) -> ToolRun:
    """The first run's flags with the median times of all runs."""
    inner = [r.inner_seconds for r in runs if r.inner_seconds is not None]
    seconds = statistics.median(r.seconds for r in runs)
    return replace(runs[0], seconds=seconds, inner_seconds=statistics.median(inner) if inner else None)


def cleanvision_python(given: Path | None) -> Path | None:
    """The Python to run cleanvision with: the one given, ../cvenv next to the repository, or this one;
    None when it cannot import cleanvision."""
    if given is None and DEFAULT_CLEANVISION.exists():
        given = DEFAULT_CLEANVISION
    if given is None:
        return Path(sys.executable) if importlib.util.find_spec("cleanvision") else None
    found = subprocess.run([str(given), "-c", "import cleanvision"], capture_output=True)
    return given if found.returncode == 0 else None


def run_cleanvision(python: Path, folder: Path, out: Path) -> ToolRun:
    """cleanvision's Imagelab with its default parameters in a child process, timed."""
    args = [str(python), "-c", CHILD, str(folder), str(out), ",".join(FLAGS)]
    started = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    found = json.loads(out.read_text())
    return ToolRun("cleanvision", {n: set(f) for n, f in found["flags"].items()}, seconds, found["seconds"])


@dataclass(frozen=True)
class Score:
    positives: int
    tp: int
    fp: int

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / self.positives if self.positives else None


def score(items: list[Item], run: ToolRun, flag: str) -> Score:
    """TP and FP of one flag over all items, don't-care flags left out; an unread image counts as unflagged."""
    tp = fp = 0
    for item in items:
        raised = flag in run.flags.get(item.name, set())
        if flag in item.expected:
            tp += raised
        elif raised and flag not in item.dont_care:
            fp += 1
    return Score(sum(flag in i.expected for i in items), tp, fp)


def ratio(value: float | None, tp: int, n: int) -> str:
    return "-" if value is None else f"{value:.2f} ({tp}/{n})"


def print_scores(items: list[Item], runs: list[ToolRun]) -> None:
    print("| flag | positives | " + " | ".join(f"{r.name} precision | {r.name} recall" for r in runs) + " |")
    print("|---|---|" + "---|---|" * len(runs))
    for flag in FLAGS:
        cells = []
        for r in runs:
            s = score(items, r, flag)
            cells += [ratio(s.precision, s.tp, s.tp + s.fp), ratio(s.recall, s.tp, s.positives)]
        print(f"| {flag} | {sum(flag in i.expected for i in items)} | " + " | ".join(cells) + " |")


def flagged_share(items: Iterable[Item], run: ToolRun, flag: str) -> str:
    chosen = list(items)
    hits = sum(flag in run.flags.get(i.name, set()) for i in chosen)
    return f"{hits}/{len(chosen)}"


def print_variants(items: list[Item], runs: list[ToolRun]) -> None:
    """Recall per generated variant: the share of its images given the expected flag."""
    print("\nRecall per variant (images given their expected flag)\n")
    print("| flag | variant | " + " | ".join(r.name for r in runs) + " |")
    print("|---|---|" + "---|" * len(runs))
    apart = {FINE_BLUR: ("blurry", "finer than the reach"), LOW_KEY: ("dark", "as dark as the low-key photos")}
    variants = dict.fromkeys((i.group, i.variant) for i in items if i.group in FLAGS or i.group in apart)
    for group, variant in variants:
        chosen = [i for i in items if (i.group, i.variant) == (group, variant)]
        flag, label = (
            (apart[group][0], f"{variant} ({apart[group][1]}, not scored)") if group in apart else (group, variant)
        )
        print(f"| {flag} | {label} | " + " | ".join(flagged_share(chosen, r, flag) for r in runs) + " |")


def names(items: Iterable[Item], run: ToolRun, flag: str) -> list[str]:
    return [Path(i.name).stem for i in items if flag in run.flags.get(i.name, set())]


def unexpected(item: Item, run: ToolRun) -> set[str]:
    """The flags a tool raised on an item that are neither expected nor don't-care."""
    return run.flags.get(item.name, set()) - item.expected - item.dont_care


def print_untouched(items: list[Item], runs: list[ToolRun]) -> None:
    untouched = [i for i in items if i.group == "untouched"]
    print(f"\nUntouched photos ({len(untouched)}) called dark or blurry; other flags they were not expected to get\n")
    print("| tool | dark | blurry | other unexpected flags |")
    print("|---|---|---|---|")
    for r in runs:
        cells = []
        for flag in ("dark", "blurry"):
            found = names(untouched, r, flag)
            cells.append(f"{len(found)}: {', '.join(found)}" if found else "0")
        other = [f"{Path(i.name).stem} ({', '.join(sorted(unexpected(i, r) - {'dark', 'blurry'}))})" for i in untouched]
        other = [o for o in other if not o.endswith("()")]
        cells.append(f"{len(other)}: {', '.join(other)}" if other else "0")
        print(f"| {r.name} | " + " | ".join(cells) + " |")


def print_hard(items: list[Item], runs: list[ToolRun]) -> None:
    crops = [i for i in items if i.variant == "plain crop"]
    nights = [i for i in items if i.variant == "night"]
    logos = [i for i in items if i.group == "logo on white"]
    negatives = [i for i in items if i.variant == "hard negative"]
    rows = [
        ("plain-surface crops: low_information (want all)", crops, "low_information"),
        ("plain-surface crops: blurry (want none)", crops, "blurry"),
        ("night photos: dark (want all)", nights, "dark"),
        ("logos on white: light (want none)", logos, "light"),
    ]
    for flag in dict.fromkeys(HARD_NEGATIVES.values()):
        chosen = [i for i in negatives if HARD_NEGATIVES[Path(i.name).stem] == flag]
        rows.append((f"untouched photos that look {flag}: {flag} (want none)", chosen, flag))
    print("\nHard cases\n")
    print("| case | " + " | ".join(r.name for r in runs) + " |")
    print("|---|" + "---|" * len(runs))
    for label, chosen, flag in rows:
        print(f"| {label} | " + " | ".join(flagged_share(chosen, r, flag) for r in runs) + " |")
    print("\nEvery flag each tool raised on them\n")
    print("| image | " + " | ".join(r.name for r in runs) + " |")
    print("|---|" + "---|" * len(runs))
    for i in crops + nights + logos + negatives:
        cells = [", ".join(sorted(r.flags.get(i.name, set()))) or "-" for r in runs]
        print(f"| {Path(i.name).stem} | " + " | ".join(cells) + " |")


def print_times(runs: list[ToolRun], count: int, repeats: int) -> None:
    print(f"\nRun times on {count} images, {os.cpu_count()} CPUs, median of {repeats} runs each\n")
    print("| tool | wall clock, s | images/s | the work alone, s |")
    print("|---|---|---|---|")
    for r in runs:
        inner = "-" if r.inner_seconds is None else f"{r.inner_seconds:.1f} (find_issues)"
        print(f"| {r.name} | {r.seconds:.1f} | {count / r.seconds:.0f} | {inner} |")
    by_name = {r.name: r for r in runs}
    if {"imgindex", "cleanvision"} <= set(by_name):
        ours, theirs = by_name["imgindex"], by_name["cleanvision"]
        print(f"\ncleanvision / imgindex wall clock: {theirs.seconds / ours.seconds:.2f}")
        if theirs.inner_seconds is not None:
            print(f"cleanvision find_issues alone / imgindex scan: {theirs.inner_seconds / ours.seconds:.2f}")
        print("(imgindex's scan also hashes, reads labels and stores every image's statistics)")


def print_set(items: list[Item]) -> None:
    groups = dict.fromkeys(i.group for i in items)
    counts = ", ".join(f"{g} {sum(i.group == g for i in items)}" for g in groups)
    print(f"{len(items)} images in one split: {counts}")
    radii = ", ".join(f"{s:.1%} = {blur_radius((640, 480), s):.1f} px" for s in BLUR_SHARES)
    print(f"Blur radii for a 640x480 photo: {radii}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cleanvision-python", type=Path, default=None, help="a Python that can import cleanvision")
    parser.add_argument("--runs", type=int, default=3, help="runs of each tool; the median time is reported")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "train"
        folder.mkdir()
        items = make_set(args.data, folder)
        print_set(items)
        python = cleanvision_python(args.cleanvision_python)
        timed: dict[str, list[ToolRun]] = {"imgindex": [], "cleanvision": []}
        for n in range(args.runs):  # alternated, so that both see the same load
            timed["imgindex"].append(run_imgindex(folder, Path(tmp) / f"index{n}.db"))
            if python is not None:
                timed["cleanvision"].append(run_cleanvision(python, folder, Path(tmp) / "cleanvision.json"))
    ours = median_run(timed["imgindex"])
    timings = [ours] + ([median_run(timed["cleanvision"])] if python is not None else [])
    runs = [r for r in timings if r.flags]
    if not ours.flags:
        print("This imgindex has no `quality` view: its flags are left out (its scan time is not).\n")
    if python is None:
        print("cleanvision is missing (pass --cleanvision-python): imgindex is reported alone.\n")
    if not runs:
        print_times(timings, len(items), args.runs)
        return
    for r in runs:
        unread = sum(i.name not in r.flags for i in items)
        if unread:
            print(f"{r.name} gave no row for {unread} images (counted as unflagged)\n")
    print_scores(items, runs)
    print_variants(items, runs)
    print_untouched(items, runs)
    print_hard(items, runs)
    if ours.flags:
        print(f"\nimgindex outliers (not scored): {ours.outliers}")
    print_times(timings, len(items), args.runs)


if __name__ == "__main__":
    main()
