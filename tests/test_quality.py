"""Image quality: measures taken in the scan's one decode, flags judged per split from them, and the
same flags through the CLI, the JSON output and SQL; real photos and edge cases made from them."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, invoke, run_imgindex, sql_rows
from PIL import Image, ImageDraw, ImageFilter

from imgindex import Index, consistency
from imgindex.extract import extract
from imgindex.quality import DEFAULTS

PHOTOS = sorted((DATA / "coco128_sample" / "images").glob("*/*.jpg"))
GREY_PHOTO = "000000000086.jpg"  # a black-and-white photo among colour ones
SKY = ("000000000071.jpg", (0, 0, 300, 120))  # a plain blue sky above the train, at full resolution


def photo(name: str) -> Image.Image:
    return Image.open(next(p for p in PHOTOS if p.name == name)).convert("RGB")


def scaled(im: Image.Image, factor: float) -> Image.Image:
    return Image.fromarray(np.clip(np.asarray(im, dtype=np.float64) * factor, 0, 255).astype(np.uint8))


def night(im: Image.Image) -> Image.Image:
    """A photo darkened to a night scene, with a few small bright lights (under 1 % of the pixels)."""
    dark = scaled(im, 0.12)
    draw = ImageDraw.Draw(dark)
    for x in range(60, im.width - 60, 130):
        draw.ellipse([x, 80, x + 8, 88], fill=(255, 240, 200))
    return dark


def logo_on_white(size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A coloured mark and text covering about 15 % of a white canvas."""
    im = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(im)
    draw.ellipse([220, 140, 420, 340], fill=(200, 30, 40))
    draw.rectangle([120, 380, 520, 420], fill=(20, 40, 160))
    return im


CASES: dict[str, set[str]] = {  # generated file -> the flags it must carry (of dark, light, blurry, ...)
    "dark_a.jpg": {"dark"},
    "dark_b.jpg": {"dark"},
    "night.jpg": {"dark"},
    "overexposed.jpg": {"light"},
    "blurred.jpg": {"blurry"},
    "sky.jpg": {"low_information"},
    "grey_l.jpg": {"grayscale"},
    "grey_rgb.jpg": {"grayscale"},
    "strip.jpg": {"odd_aspect_ratio"},
    "tiny.jpg": {"odd_size"},
}
JUDGED = ("dark", "light", "blurry", "low_information", "odd_aspect_ratio", "grayscale")


def photo_split(tmp_path: Path, photos: list[Path]) -> tuple[Path, Path]:
    """A split folder `train` holding copies of the photos, and where its index goes."""
    folder = tmp_path / "train"
    folder.mkdir()
    for p in photos:
        shutil.copy(p, folder / p.name)
    return folder, tmp_path / "index.db"


def make_split(folder: Path) -> Path:
    """The real photos, and images made from them with one problem each (CASES), in one split."""
    folder.mkdir(parents=True, exist_ok=True)
    for p in PHOTOS:
        shutil.copy(p, folder / p.name)
    base = photo("000000000025.jpg")
    made = {
        "dark_a.jpg": scaled(base, 0.15),
        "dark_b.jpg": scaled(photo("000000000092.jpg"), 0.2),
        "night.jpg": night(photo("000000000094.jpg")),
        "overexposed.jpg": scaled(photo("000000000049.jpg"), 3.5),
        "blurred.jpg": base.filter(ImageFilter.GaussianBlur(0.02 * min(base.size))),
        "sky.jpg": photo(SKY[0]).crop(SKY[1]),
        "grey_rgb.jpg": photo("000000000077.jpg").convert("L").convert("RGB"),
        "strip.jpg": base.resize((1200, 300)),
        "tiny.jpg": base.resize((80, 53)),
        "logo.jpg": logo_on_white(),
    }
    photo("000000000030.jpg").convert("L").save(folder / "grey_l.jpg", quality=90)
    for name, im in made.items():
        im.save(folder / name, quality=90)
    return folder


@pytest.fixture(scope="module")
def judged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("quality")
    folder = make_split(root / "train")
    db = root / "index.db"
    invoke("scan", "--db", str(db), f"train={folder}", "-q")
    return db, folder


def flags_by_name(db: Path) -> dict[str, set[str]]:
    rows = sql_rows(db, "select rel_path, flags from quality")
    return {r["rel_path"]: set(filter(None, r["flags"].split(","))) for r in rows}


def test_each_problem_is_flagged_and_the_untouched_photos_are_not_dark_or_blurry(judged: tuple[Path, Path]) -> None:
    db, _ = judged
    flags = flags_by_name(db)
    for name, expected in CASES.items():
        assert expected <= flags[name], (name, flags[name])
        assert not (flags[name] - expected) & set(JUDGED) - {"low_information"}, (name, flags[name])
    for p in PHOTOS:
        assert not flags[p.name] & {"dark", "light", "blurry", "low_information"}, (p.name, flags[p.name])
    assert flags[GREY_PHOTO] >= {"grayscale"}
    assert sum("grayscale" in flags[p.name] for p in PHOTOS) == 1


def test_the_hard_cases(judged: tuple[Path, Path]) -> None:
    """A sharp photo of a plain surface is low-information, not blurry; a night photo with a few
    lights is dark; a logo on white is not overexposed."""
    flags = flags_by_name(judged[0])
    assert "low_information" in flags["sky.jpg"] and "blurry" not in flags["sky.jpg"]
    assert "dark" in flags["night.jpg"]
    assert "light" not in flags["logo.jpg"]


def test_the_quality_view_agrees_with_the_flag_table_and_the_json_output(judged: tuple[Path, Path]) -> None:
    db, _ = judged
    table = {
        (r["rel_path"], r["flag"])
        for r in sql_rows(db, "select rel_path, flag from quality_flags f join images i on i.id = f.image_id")
    }
    view = flags_by_name(db)
    assert table == {(name, flag) for name, flags in view.items() for flag in flags}
    columns = sql_rows(db, "select rel_path, dark, blurry, grayscale from quality")
    assert {r["rel_path"] for r in columns if r["dark"]} == {name for name, flags in view.items() if "dark" in flags}
    out = run_imgindex("quality", "--db", str(db), "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["rule"]["thresholds"] == DEFAULTS
    listed = {(Path(e["path"]).name, flag) for e in data["images"] for flag in e["flags"]}
    assert listed == table
    assert data["splits"]["train"]["images"] == len(view)
    assert data["splits"]["train"]["flags"]["dark"] == sum("dark" in f for f in view.values())


def test_the_text_output_states_the_rule_and_counts(judged: tuple[Path, Path]) -> None:
    out = invoke("quality", "--db", str(judged[0])).output
    assert "dark: 95th percentile of brightness under 0.32 of white" in out
    header = next(line for line in out.splitlines() if line.startswith("split"))
    row = next(line for line in out.splitlines() if line.startswith("train"))
    counts = dict(zip(header.split(), row.split()))
    assert counts["images"] == str(len(flags_by_name(judged[0])))
    assert int(counts["dark"]) >= 3
    assert "night.jpg" in out


def images_digest(db: Path) -> str:
    rows = sql_rows(db, "select * from images order by id")
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()


def test_a_new_threshold_judges_again_from_the_stored_measures(tmp_path: Path) -> None:
    """No image is opened: the files are gone, the flags still follow the threshold, and the
    threshold is kept for later runs and shown by every output."""
    folder = make_split(tmp_path / "train")
    db = tmp_path / "index.db"
    invoke("scan", "--db", str(db), f"train={folder}", "-q")
    before = images_digest(db)
    dark_before = {n for n, f in flags_by_name(db).items() if "dark" in f}
    shutil.rmtree(folder)
    out = invoke("quality", "--db", str(db), "--threshold", "dark=0.6", "--flag", "dark").output
    assert "dark: 95th percentile of brightness under 0.6 of white" in out
    dark_after = {n for n, f in flags_by_name(db).items() if "dark" in f}
    p95 = {r["rel_path"]: r["brightness_p95"] for r in sql_rows(db, "select rel_path, brightness_p95 from quality")}
    assert dark_after == {n for n, v in p95.items() if v / 255 < 0.6}
    assert dark_after > dark_before
    assert images_digest(db) == before
    assert sql_rows(db, "select threshold from quality_rule where flag = 'dark'") == [{"threshold": 0.6}]
    with Index(db, readonly=True) as index:
        assert index.quality().thresholds["dark"] == 0.6
    invoke("quality", "--db", str(db), "--threshold", "dark=default")
    assert {n for n, f in flags_by_name(db).items() if "dark" in f} == dark_before


def test_a_kept_threshold_applies_to_images_scanned_later(tmp_path: Path) -> None:
    folder, db = photo_split(tmp_path, PHOTOS[:8])
    invoke("scan", "--db", str(db), f"train={folder}", "-q")
    invoke("quality", "--db", str(db), "--threshold", "blurry=0.99")
    scaled(photo("000000000025.jpg"), 0.5).save(folder / "dim.jpg", quality=90)
    invoke("scan", "--db", str(db), f"train={folder}", "-q")
    rule = {r["flag"]: r["threshold"] for r in sql_rows(db, "select flag, threshold from quality_rule")}
    assert rule["blurry"] == 0.99
    sharp = {r["rel_path"]: r["sharpness"] for r in sql_rows(db, "select rel_path, sharpness from quality")}
    flags = flags_by_name(db)
    assert "dim.jpg" in flags
    assert {n for n, f in flags.items() if "blurry" in f} == {n for n, s in sharp.items() if s < 0.99}


def test_flags_follow_a_rescan_and_equal_a_clean_scan(tmp_path: Path) -> None:
    folder, db = photo_split(tmp_path, PHOTOS)
    invoke("scan", "--db", str(db), f"train={folder}", "-q")
    assert not any("dark" in f for f in flags_by_name(db).values())
    scaled(photo("000000000092.jpg"), 0.15).save(folder / "000000000092.jpg", quality=90)  # changed in place
    photo("000000000025.jpg").resize((1200, 300)).save(folder / "strip.jpg", quality=90)  # added
    (folder / GREY_PHOTO).unlink()  # removed
    invoke("scan", "--db", str(db), f"train={folder}", "-q")
    flags = flags_by_name(db)
    assert "dark" in flags["000000000092.jpg"]
    assert "odd_aspect_ratio" in flags["strip.jpg"]
    assert GREY_PHOTO not in flags
    assert not any("grayscale" in f for f in flags.values())
    clean = tmp_path / "clean.db"
    invoke("scan", "--db", str(clean), f"train={folder}", "-q")
    found = consistency.compare_files(db, clean)
    assert consistency.count(found) == 0, consistency.describe(found, "incremental", "clean")


def test_odd_size_and_grayscale_are_judged_within_each_split(tmp_path: Path) -> None:
    """A size or a grey image is odd only against its own split: a split of small grey images
    holds no odd_size and no grayscale flags, while the same images in a colour split of photos do."""
    colour, grey = tmp_path / "colour", tmp_path / "grey"
    colour.mkdir()
    grey.mkdir()
    for n, p in enumerate(PHOTOS):
        shutil.copy(p, colour / p.name)
        small = Image.open(p).convert("L").resize((96, 64))
        small.save(grey / f"g{n}.png")
    small.save(colour / "small_grey.png")
    db = tmp_path / "index.db"
    invoke("scan", "--db", str(db), f"colour={colour}", f"grey={grey}", "-q", "--labels", "none")
    rows = sql_rows(db, "select split, rel_path, flags from quality")
    grey_flags = {r["rel_path"]: r["flags"] for r in rows if r["split"] == "grey"}
    assert all(flags == "" for flags in grey_flags.values()), grey_flags
    odd = {r["rel_path"]: r["flags"].split(",") for r in rows if r["split"] == "colour"}
    assert {"odd_size", "grayscale"} <= set(odd["small_grey.png"])


def test_measures_of_flat_grey_and_noisy_images(tmp_path: Path) -> None:
    flat = tmp_path / "flat.png"
    Image.new("RGB", (320, 240), (90, 90, 90)).save(flat)
    rng = np.random.default_rng(7)
    noise = tmp_path / "noise.png"
    Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)).save(noise)
    row = extract(str(flat))
    assert (row["entropy"], row["chroma"], row["luma_std"], row["sharpness"]) == (0.0, 0.0, 0.0, None)
    assert row["brightness_p5"] == row["brightness_p95"] == 90
    noisy = extract(str(noise))
    assert noisy["entropy"] > 5.5 and noisy["chroma"] > 30 and noisy["sharpness"] > 1.0
    for name in ("flat.png", "noise.png"):
        assert "blurry" not in flags_of_single(tmp_path, name)


def flags_of_single(tmp_path: Path, name: str) -> set[str]:
    folder = tmp_path / f"one_{name}"
    folder.mkdir()
    shutil.copy(tmp_path / name, folder / name)
    db = tmp_path / f"{name}.db"
    invoke("scan", "--db", str(db), f"one={folder}", "-q", "--labels", "none")
    return flags_by_name(db)[name]


def test_sharpness_falls_with_blur_relative_to_the_picture(tmp_path: Path) -> None:
    """The same blur relative to the shorter side gives about the same sharpness at any file size."""
    base = photo("000000000071.jpg")
    values: dict[tuple[int, float], float] = {}
    for width in (640, 1600):
        big = base.resize((width, width * base.height // base.width), Image.Resampling.LANCZOS)
        for share in (0.0, 0.01, 0.03):
            im = big.filter(ImageFilter.GaussianBlur(share * min(big.size))) if share else big
            path = tmp_path / f"{width}_{share}.jpg"
            im.save(path, quality=92)
            values[width, share] = extract(str(path))["sharpness"]
    for width in (640, 1600):
        assert values[width, 0.0] > values[width, 0.01] > values[width, 0.03]
        assert values[width, 0.03] < DEFAULTS["blurry"] < values[width, 0.0]
    for share in (0.0, 0.01, 0.03):
        assert abs(values[640, share] - values[1600, share]) < 0.12, values


def test_detail_of_a_long_noisy_image_is_its_true_rms_difference(tmp_path: Path) -> None:
    """A 64x1600 strip of black and white noise: its neighbours' squared differences sum past
    2**31: a 32-bit sum wrapped negative and the file was recorded as unreadable (a math domain
    error); detail is the RMS difference computed in floats."""
    levels = np.random.default_rng(7).integers(0, 2, size=(1600, 64), dtype=np.uint8) * 255
    Image.fromarray(levels, "L").save(tmp_path / "strip.png")
    wide = levels.astype(np.float64)
    across, down = np.diff(wide, axis=1), np.diff(wide, axis=0)
    assert (across**2).sum() > 2**31 and (down**2).sum() > 2**31
    expected = np.sqrt(((across**2).sum() + (down**2).sum()) / (across.size + down.size))
    assert extract(str(tmp_path / "strip.png"))["detail"] == round(float(expected), 3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threshold", "nope=1"], "no quality flag is called 'nope'; the flags are: dark, light"),
        (["--threshold", "dark"], "give FLAG=VALUE, e.g. --threshold dark=0.25"),
        (["--threshold", "dark=high"], "the threshold of dark must be a number"),
    ],
)
def test_misuse_is_one_line(judged: tuple[Path, Path], args: list[str], message: str) -> None:
    out = run_imgindex("quality", "--db", str(judged[0]), *args)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr


def test_a_missing_index_is_one_line(tmp_path: Path) -> None:
    out = run_imgindex("quality", "--db", str(tmp_path / "none.db"))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert not (tmp_path / "none.db").exists()


def test_the_readme_documents_every_flag_with_its_default() -> None:
    from conftest import ROOT

    from imgindex.quality import FLAGS

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("| flag | measure (column of `images`) | default threshold |", 1)[1].split("\n\n", 1)[0]
    rows = {line.split("|")[1].strip(" `"): line for line in table.splitlines()[2:]}
    assert set(rows) == {flag.name for flag in FLAGS}
    for flag in FLAGS:
        assert f"{flag.default:g}" in rows[flag.name].split("|")[3], (flag.name, flag.default)


def test_a_scan_takes_thresholds_too_and_refuses_a_bad_one_before_writing(tmp_path: Path) -> None:
    folder, db = photo_split(tmp_path, PHOTOS[:6])
    bad = run_imgindex("scan", "--db", str(db), f"train={folder}", "-q", "--quality-threshold", "blury=0.7")
    assert bad.returncode == 2 and "no quality flag is called 'blury'" in bad.stderr
    assert not db.exists()
    invoke("scan", "--db", str(db), f"train={folder}", "-q", "--quality-threshold", "blurry=0.95")
    sharp = {r["rel_path"]: r["sharpness"] for r in sql_rows(db, "select rel_path, sharpness from quality")}
    blurry = {n for n, f in flags_by_name(db).items() if "blurry" in f}
    assert blurry == {n for n, s in sharp.items() if s < 0.95} and blurry
    invoke("scan", "--db", str(db), f"train={folder}", "-q")  # a later scan keeps it
    assert sql_rows(db, "select threshold from quality_rule where flag = 'blurry'") == [{"threshold": 0.95}]
