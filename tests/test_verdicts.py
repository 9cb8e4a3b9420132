"""One verdict everywhere: the CLI, the report's summary.json and the canned queries agree; other
photos of one scene are scenes, not leakage; a duplicate labelled two ways is a label conflict."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA, invoke, sql_rows
from datasette.app import Datasette
from PIL import Image

from imgindex.near import verify
from imgindex.report import build_report

CHESS = DATA / "chess_coco"  # one board, a fixed tripod, pieces moved between shots
BCCD = DATA / "bccd_voc"  # BloodImage_00037 (val) and _00038 (train): the slide's field moved
RUBY = DATA / "rubyrizz_yolo"


def verdict_json(db: Path, *args: str) -> dict[str, Any]:
    return json.loads(invoke("duplicates", "--db", str(db), "--json", *args).output)


def summary_duplicates(db: Path, tmp_path: Path) -> dict[str, Any]:
    outcome = build_report(db, tmp_path / "logs", title="t")
    summary = json.loads((outcome.directory / "summary.json").read_text())
    return next(f for f in summary["features"] if f["name"] == "ImageDuplicates")


def canned(db: Path, name: str) -> list[dict[str, Any]]:
    async def run() -> Any:
        return await Datasette([str(db)]).client.get(f"/{db.stem}/{name}.json?_shape=objects")

    response = asyncio.run(run())
    assert response.status_code == 200, response.text
    return list(response.json()["rows"])


def scan_splits(db: Path, root: Path, *splits: str) -> None:
    invoke("scan", "--db", str(db), "-q", *(f"{s}={root / s}" for s in splits))


def test_photos_of_one_fixed_scene_are_a_shared_scene_not_leakage(tmp_path: Path) -> None:
    db = tmp_path / "chess.db"
    scan_splits(db, CHESS, "train", "valid", "test")
    doc = verdict_json(db)
    assert all(item["groups"] == [] for item in doc["intersections"])  # no leakage claimed
    shared = [item for item in doc["intersections"] if item["scenes"]]
    assert shared, "the board photos are reported as one scene shared by the splits"
    text = invoke("duplicates", "--db", str(db)).output
    assert "different photos of one scene (not copies)" in text
    for split, item in doc["splits"].items():  # scenes within a split are said too, as the JSON lists them
        if item["scenes"]:
            images = sum(len(scene) for scene in item["scenes"])
            assert f"{split}: {len(item['scenes'])} scene(s) of {images} images: different photos" in text
    feature = summary_duplicates(db, tmp_path)
    assert not any("overstates accuracy" in n for n in feature["notices"])
    assert feature["stats"]["Scene overlap"] and feature["stats"]["Rule"]["name"] == "imgindex"
    assert {(r["split_a"], r["split_b"]) for r in canned(db, "scenes_between_splits")} == {
        tuple(item["splits"]) for item in shared
    }
    assert canned(db, "leakage_between_splits") == []


def test_the_shifted_blood_smear_pair_is_found_alike_by_cli_and_report(tmp_path: Path) -> None:
    db = tmp_path / "bccd.db"
    invoke("scan", "--db", str(db), "-q", f"train={BCCD}", f"val={BCCD}", f"test={BCCD}")
    doc = verdict_json(db)
    pair = next(item for item in doc["intersections"] if item["splits"] == ["train", "val"])
    names = [Path(p).name for p in pair["scenes"][0]]
    assert names == ["BloodImage_00037.jpg", "BloodImage_00038.jpg"]
    feature = summary_duplicates(db, tmp_path)
    [scene] = [s for s in feature["stats"]["Scene overlap"] if s["splits"] == ["train", "val"]]
    assert scene["scenes"] == pair["scenes"]
    assert "train and val share 1 scene(s), 2 images" in feature["description"]


@pytest.fixture()
def conflicting(tmp_path: Path) -> Path:
    """rubyrizz with a train image copied byte for byte into test, its boxes moved there."""
    root = tmp_path / "ruby"
    shutil.copytree(RUBY, root)
    image = next((root / "train" / "images").glob("image_3*.jpg"))
    shutil.copy(image, root / "test" / "images" / "copied.jpg")
    rows = (root / "train" / "labels" / f"{image.stem}.txt").read_text().split("\n")
    moved = [" ".join([r.split()[0], "0.1", "0.1", *r.split()[3:]]) for r in rows if r.strip()]
    (root / "test" / "labels" / "copied.txt").write_text("\n".join(moved) + "\n")
    db = tmp_path / "ruby.db"
    scan_splits(db, root, "train", "valid", "test")
    return db


def test_a_byte_identical_pair_with_different_boxes_is_a_label_conflict(conflicting: Path, tmp_path: Path) -> None:
    doc = verdict_json(conflicting)
    [conflict] = doc["label_conflicts"]
    assert conflict["grade"] == "byte-identical" and conflict["kind"] == "boxes differ"
    assert sorted(conflict["splits"]) == ["test", "train"]
    assert (
        "Label conflicts: 1 duplicate pair(s) are labelled two ways (boxes differ)."
        in invoke("duplicates", "--db", str(conflicting)).output
    )
    feature = summary_duplicates(conflicting, tmp_path)
    assert [c["paths"] for c in feature["stats"]["Label conflicts"]] == [conflict["paths"]]
    assert any("labelled two ways" in n for n in feature["notices"])
    rows = canned(conflicting, "conflicting_labels")
    assert [(r["path_a"], r["path_b"], r["kind"]) for r in rows] == [(*conflict["paths"], "boxes differ")]


def test_a_class_conflict_names_the_classes(tmp_path: Path) -> None:
    root = tmp_path / "ruby"
    shutil.copytree(RUBY, root)
    image = next((root / "train" / "images").glob("image_3*.jpg"))
    shutil.copy(image, root / "test" / "images" / "copied.jpg")
    rows = [r.split() for r in (root / "train" / "labels" / f"{image.stem}.txt").read_text().split("\n") if r.strip()]
    first = int(rows[0][0])
    other = (first + 1) % 6
    rows[0][0] = str(other)
    (root / "test" / "labels" / "copied.txt").write_text("\n".join(" ".join(r) for r in rows) + "\n")
    db = tmp_path / "ruby.db"
    scan_splits(db, root, "train", "valid", "test")
    [conflict] = verdict_json(db)["label_conflicts"]
    names = {
        int(r["class_id"]): r["name"]
        for r in sql_rows(db, "select class_id, name from classes where class_id is not null")
    }
    assert conflict["kind"] == "classes differ"
    expected = {f"1 x {names[first]} (class {first})", f"1 x {names[other]} (class {other})"}
    assert all(part in conflict["detail"] for part in expected), conflict


def test_cli_report_and_canned_queries_read_one_verdict(conflicting: Path, tmp_path: Path) -> None:
    doc = verdict_json(conflicting)
    feature = summary_duplicates(conflicting, tmp_path)
    assert feature["stats"]["Rule"] == doc["rule"]
    leaks = {tuple(i["splits"]): i["groups"] for i in doc["intersections"] if i["groups"]}
    assert leaks == {("test", "train"): [sorted(doc["label_conflicts"][0]["paths"])]}
    assert feature["stats"]["Intersection duplicates (train, test)"] == leaks[("test", "train")]
    rows = canned(conflicting, "leakage_between_splits")
    assert [sorted(json.loads(r["paths_a"]) + json.loads(r["paths_b"])) for r in rows] == leaks[("test", "train")]
    assert doc["rule"]["description"] in invoke("duplicates", "--db", str(conflicting)).output
    assert canned(conflicting, "verdict_rule")[0]["verification"] == verify.VERSION


def test_datagradients_rule_is_named_and_computed_on_demand(conflicting: Path) -> None:
    text = invoke("duplicates", "--db", str(conflicting), "--rule", "datagradients").output
    assert text.startswith("Rule: DataGradients' rule: equal 64-bit dHash, nothing else")
    doc = verdict_json(conflicting, "--rule", "datagradients")
    assert doc["rule"]["verification"] is None
    assert any(i["groups"] for i in doc["intersections"])  # the byte copy has an equal dHash too


def test_a_label_fix_alone_updates_the_verdict_and_a_warm_scan_keeps_it(conflicting: Path, tmp_path: Path) -> None:
    root = tmp_path / "ruby"
    before = verdict_json(conflicting)
    invoke("scan", "--db", str(conflicting), "-q", *(f"{s}={root / s}" for s in ("train", "valid", "test")))
    assert verdict_json(conflicting) == before  # nothing changed: the stored verdict is kept
    image = next((root / "train" / "images").glob("image_3*.jpg"))
    shutil.copy(root / "train" / "labels" / f"{image.stem}.txt", root / "test" / "labels" / "copied.txt")
    invoke("scan", "--db", str(conflicting), "-q", *(f"{s}={root / s}" for s in ("train", "valid", "test")))
    after = verdict_json(conflicting)
    assert before["label_conflicts"] and after["label_conflicts"] == []
    assert [i["groups"] for i in after["intersections"]] == [i["groups"] for i in before["intersections"]]


def test_the_review_page_shows_the_grade_the_labels_gave(tmp_path: Path) -> None:
    db = tmp_path / "chess.db"
    scan_splits(db, CHESS, "train", "valid", "test")
    rows = json.loads(invoke("sql", "--db", str(db), "--json", "select a, b, grade from verdict_pairs").output)
    regraded = rows[0]
    assert json.loads(
        invoke(
            "sql",
            "--db",
            str(db),
            "--json",
            f"select kind from near_pairs where a = {regraded['a']} and b = {regraded['b']}",
        ).output
    ) == [{"kind": "copy"}]  # the pixels alone call it a copy; the boards' pieces differ

    async def run() -> Any:
        return await Datasette([str(db)]).client.get(f"/-/imgindex/image/{regraded['a']}/review")

    page = asyncio.run(run()).text
    partner = page.index(f"/-/imgindex/image/{regraded['b']}/review")
    section = page.rfind("Same scene, another photo", 0, partner)
    assert section != -1 and page.rfind("Copies (", 0, partner) < section


def test_copies_brightened_apart_stay_in_their_photos_group(tmp_path: Path) -> None:
    """+10 % and -10 % copies differ in mean luma by more than a candidate pair may; both are still
    copies of the photo, so one group holds all three (the group check compares tone-free)."""
    from PIL import Image, ImageEnhance

    folder = tmp_path / "train"
    folder.mkdir()
    source = DATA / "coco8" / "images" / "train" / "000000000009.jpg"
    shutil.copy(source, folder / "photo.jpg")
    with Image.open(source) as im:
        rgb = im.convert("RGB")
    for name, factor in (("brighter.jpg", 1.1), ("darker.jpg", 0.9)):
        ImageEnhance.Brightness(rgb).enhance(factor).save(folder / name, quality=90)
    db = tmp_path / "b.db"
    invoke("scan", "--db", str(db), "-q", f"train={folder}")
    kinds = json.loads(invoke("sql", "--db", str(db), "--json", "select kind from near_pairs order by a, b").output)
    assert {"different"} <= {k["kind"] for k in kinds}  # the two copies alone are too far apart in tone
    [group] = verdict_json(db)["splits"]["train"]["groups"]
    assert sorted(Path(p).name for p in group) == ["brighter.jpg", "darker.jpg", "photo.jpg"]


def test_copies_cropped_five_percent_from_a_corner_join_their_photo(tmp_path: Path) -> None:
    """A 5 % corner crop moves these photos' dHash by more than 8 bits; the window hashes find the
    pair, the signatures confirm it, and each crop joins its own photo's group (and no other)."""
    from PIL import Image

    from imgindex.near import pairs as near_pairs

    folder = tmp_path / "train"
    folder.mkdir()
    sources = [
        DATA / "coco8" / "images" / "train" / "000000000009.jpg",
        DATA / "coco128_sample" / "images" / "train2017" / "000000000030.jpg",
        DATA / "coco128_sample" / "images" / "train2017" / "000000000072.jpg",
    ]
    for source, corner in zip(sources, ("top-left", "bottom-right", "top-right")):
        shutil.copy(source, folder / source.name)
        with Image.open(source) as im:
            w, h = im.size
            dx, dy = round(w * 0.05), round(h * 0.05)
            box = {"top-left": (dx, dy, w, h), "bottom-right": (0, 0, w - dx, h - dy), "top-right": (0, dy, w - dx, h)}
            im.crop(box[corner]).save(folder / f"{source.stem}_crop.jpg", quality=90)
    db = tmp_path / "c.db"
    invoke("scan", "--db", str(db), "-q", f"train={folder}")
    groups = verdict_json(db)["splits"]["train"]["groups"]
    assert sorted(sorted(Path(p).stem for p in g) for g in groups) == [[s.stem, f"{s.stem}_crop"] for s in sources]
    found = json.loads(
        invoke(
            "sql",
            "--db",
            str(db),
            "--json",
            "select distance, window_distance, kind from near_pairs where kind = 'copy'",
        ).output
    )
    by_window = [p for p in found if p["distance"] > near_pairs.CEILING]
    assert by_window and all(p["window_distance"] <= near_pairs.WINDOW_MAX for p in by_window)


def caption(rgb: Image.Image, text: str) -> Image.Image:
    """rgb with opaque white text a twelfth of its height in the bottom-left corner."""
    from PIL import ImageDraw, ImageFont

    out = rgb.copy()
    font = ImageFont.load_default(size=max(rgb.height // 12, 8))
    draw = ImageDraw.Draw(out)
    left, _, _, bottom = draw.textbbox((0, 0), text, font=font)
    margin = max(rgb.height // 50, 2)
    draw.text((margin - left, rgb.height - margin - bottom), text, font=font, fill=(255, 255, 255))
    return out


@pytest.mark.parametrize("stem", ["000000000025", "000000000094"])
def test_of_two_copies_that_fail_against_each_other_the_one_further_from_the_photo_leaves(
    tmp_path: Path, stem: str
) -> None:
    """A captioned copy and a centred 5 % crop of one photo: each passes against the photo, they
    fail against each other (the caption stands out once the crop is lined up), and both are
    linked to the photo alone. Only one can stay; the caption, which differs more from the photo,
    leaves, whatever the files are called (the caption sorts first here)."""
    folder = tmp_path / "train"
    folder.mkdir()
    source = DATA / "coco128_sample" / "images" / "train2017" / f"{stem}.jpg"
    shutil.copy(source, folder / "photo.jpg")
    with Image.open(source) as im:
        rgb = im.convert("RGB")
    w, h = rgb.size
    dx, dy = round(w * 0.05), round(h * 0.05)
    caption(rgb, "Sample caption, 2024").save(folder / "a_captioned.jpg", quality=90)
    rgb.crop((dx // 2, dy // 2, w - (dx - dx // 2), h - (dy - dy // 2))).save(folder / "b_cropped.jpg", quality=90)
    db = tmp_path / "o.db"
    invoke("scan", "--db", str(db), "-q", f"train={folder}")
    kinds = json.loads(
        invoke(
            "sql",
            "--db",
            str(db),
            "--json",
            "select i.path a, j.path b, kind, change from near_pairs join images i on i.id = a join images j on j.id = b",
        ).output
    )
    kind = {frozenset((Path(k["a"]).stem, Path(k["b"]).stem)): k for k in kinds}
    assert kind[frozenset(("a_captioned", "b_cropped"))]["kind"] == "similar-scene"
    photo_caption, photo_crop = kind[frozenset(("a_captioned", "photo"))], kind[frozenset(("b_cropped", "photo"))]
    assert photo_caption["kind"] == photo_crop["kind"] == "copy" and photo_crop["change"] < photo_caption["change"]
    [group] = verdict_json(db)["splits"]["train"]["groups"]
    assert sorted(Path(p).stem for p in group) == ["b_cropped", "photo"]


RESHOTS = DATA / "chess_reshots"  # one knight turned on its square between two shots, labels alike


def with_resized_copy(tmp_path: Path) -> tuple[Path, str, str]:
    """The two re-shots, plus the first re-encoded at half size with its box: (folder, first, copy)."""
    folder = tmp_path / "reshots"
    shutil.copytree(RESHOTS, folder)
    data = json.loads((folder / "_annotations.coco.json").read_text())
    first = data["images"][0]
    with Image.open(folder / first["file_name"]) as im:
        im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS).save(folder / "copy.jpg", quality=70)
    data["images"].append({**first, "id": 9999, "file_name": "copy.jpg", "width": 1024, "height": 685})
    box = next(a for a in data["annotations"] if a["image_id"] == first["id"])
    data["annotations"].append({**box, "id": 99999, "image_id": 9999, "bbox": [v / 2 for v in box["bbox"]]})
    (folder / "_annotations.coco.json").write_text(json.dumps(data))
    return folder, first["file_name"], "copy.jpg"


def test_a_turned_piece_labelled_alike_is_another_shot_and_a_resized_copy_stays_a_copy(tmp_path: Path) -> None:
    folder, first, copy = with_resized_copy(tmp_path)
    db = tmp_path / "reshots.db"
    invoke("scan", "--db", str(db), "-q", f"train={folder}")
    doc = verdict_json(db)
    [group] = doc["splits"]["train"]["groups"]
    assert sorted(Path(p).name for p in group) == sorted([first, copy])
    [scene] = doc["splits"]["train"]["scenes"]
    assert len(scene) == 3  # the other shot is the same scene, not a copy
    reasons = query_rows(db, "SELECT reason FROM verdict_pairs")
    assert reasons == [("a labelled object differs",)] * 2  # the other shot against each copy


def test_without_labels_the_turned_piece_is_not_told_from_a_copy(tmp_path: Path) -> None:
    """What the labels add: by the 32x32 signatures alone the two shots differ too little."""
    db = tmp_path / "unlabelled.db"
    invoke("scan", "--db", str(db), "-q", "--labels", "none", f"train={RESHOTS}")
    assert [len(g) for g in verdict_json(db)["splits"]["train"]["groups"]] == [2]
    labelled = tmp_path / "labelled.db"
    invoke("scan", "--db", str(labelled), "-q", f"train={RESHOTS}")
    assert verdict_json(labelled)["splits"]["train"]["groups"] == []
    assert query_rows(labelled, "SELECT kind FROM near_pairs") == [("copy",)]  # graded by pixels alone


def query_rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute(sql).fetchall()


def test_an_index_graded_before_signature_v2_is_judged_again_by_upgrade(tmp_path: Path) -> None:
    """The stored verdict of an older index (the two shots one duplicate group, as signature-v1
    had it) is replaced by `imgindex upgrade`, without a rescan."""
    db = tmp_path / "old.db"
    invoke("scan", "--db", str(db), "-q", f"train={RESHOTS}")
    with sqlite3.connect(db) as conn:
        conn.executescript("DELETE FROM verdict_pairs; DELETE FROM verdict_members; DELETE FROM verdict_groups;")
        conn.execute(
            "INSERT INTO verdict_groups (id, kind, grade, size, max_distance) VALUES (1, 'duplicates', 'copy', 2, 0)"
        )
        conn.execute("INSERT INTO verdict_members SELECT 1, id FROM images")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = '011_verification_v2.sql'")
    refused = invoke("duplicates", "--db", str(db), ok=False)
    assert refused.exit_code == 1 and "older imgindex" in refused.output
    invoke("upgrade", "--db", str(db))
    assert verdict_json(db)["splits"]["train"]["groups"] == []
    assert query_rows(db, "SELECT reason FROM verdict_pairs") == [("a labelled object differs",)]
