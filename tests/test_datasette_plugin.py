"""The Datasette plugin, through Datasette's own test client on a real scanned index."""

from __future__ import annotations

import asyncio
import io
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from datasette.app import Datasette
from datasette.plugins import get_plugins
from markupsafe import escape
from PIL import Image, ImageFilter

from imgindex.cli import cli
from imgindex.quality import FLAGS
from imgindex.scan import scan

DATA = Path(__file__).parent / "data"
COCO8_30 = DATA / "coco8" / "images" / "train" / "000000000030.jpg"
COCO8_09 = DATA / "coco8" / "images" / "train" / "000000000009.jpg"
COCO128_30 = DATA / "coco128_sample" / "images" / "train2017" / "000000000030.jpg"  # coco8's, re-encoded


@pytest.fixture()
def dataset(tmp_path: Path) -> dict[str, Path]:
    """train: two pictures plus a byte copy of one; val: a re-encoded copy of a train picture
    (a leak) and a file that is not an image."""
    train, val = tmp_path / "train", tmp_path / "val"
    train.mkdir()
    val.mkdir()
    shutil.copy(COCO8_30, train / "000000000030.jpg")
    shutil.copy(COCO8_09, train / "000000000009.jpg")
    shutil.copy(COCO8_09, train / "copy of 000000000009.jpg")
    shutil.copy(COCO128_30, val / "000000000030.jpg")
    (val / "broken.jpg").write_bytes(b"this is not a JPEG")
    db = tmp_path / "index.db"
    scan(db, {"train": [train], "val": [val]}, workers=1)
    return {"db": db, "train": train, "val": val}


def get(db: Path, path: str, **kwargs: Any) -> httpx.Response:
    async def run() -> httpx.Response:
        return await Datasette([str(db)]).client.get(path, **kwargs)

    return asyncio.run(run())


def image_id(db: Path, path: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("select id from images where path = ?", [str(path)]).fetchone()[0])


def thumb_sources(html: str) -> list[str]:
    return [s.replace("&amp;", "&") for s in re.findall(r'<img class="imgindex-thumb"[^>]* src="([^"]+)"', html)]


def test_plugin_is_installed_through_its_entry_point() -> None:
    plugin = next(p for p in get_plugins() if p["name"] == "imgindex")
    assert {"render_cell", "register_routes", "canned_queries", "prepare_connection"} <= set(plugin["hooks"])


def test_images_table_shows_a_thumbnail_per_row_that_loads(dataset: dict[str, Path]) -> None:
    page = get(dataset["db"], "/index/images")
    assert page.status_code == 200
    sources = thumb_sources(page.text)
    assert len(sources) == 4  # the unreadable file has no thumbnail
    thumb = get(dataset["db"], sources[0])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(thumb.content)) as picture:
        assert max(picture.size) == 160


def test_full_image_is_the_indexed_file(dataset: dict[str, Path]) -> None:
    path = dataset["val"] / "000000000030.jpg"
    response = get(dataset["db"], f"/-/imgindex/image/{image_id(dataset['db'], path)}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert response.content == path.read_bytes()


def test_unreadable_file_is_a_download_without_thumbnail(dataset: dict[str, Path]) -> None:
    broken = image_id(dataset["db"], dataset["val"] / "broken.jpg")
    download = get(dataset["db"], f"/-/imgindex/image/{broken}")
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/octet-stream"
    assert "attachment" in download.headers["content-disposition"]
    assert get(dataset["db"], f"/-/imgindex/image/{broken}/thumbnail").status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "/-/imgindex/image/999999",
        "/-/imgindex/image/999999/thumbnail",
        "/-/imgindex/image/../../../../etc/passwd",
        "/-/imgindex/image/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "/-/imgindex/image/%2Fetc%2Fpasswd",
        "/-/imgindex/image//etc/passwd",
        "/-/imgindex/image/1%2F..%2F..%2Fetc%2Fpasswd",
        "/-/imgindex/image/-1",
        "/-/imgindex/image/1?db=../../etc/passwd",
        "/-/imgindex/image/1?db=_internal",
        "/-/imgindex/image/999999/review",
        "/-/imgindex/image/1/review?db=_internal",
        "/-/imgindex/image/1/review?db=../../etc/passwd",
        "/-/imgindex/image/..%2F..%2Fetc%2Fpasswd/review",
    ],
)
def test_only_indexed_ids_are_served(dataset: dict[str, Path], url: str) -> None:
    response = get(dataset["db"], url, follow_redirects=True)  # Datasette redirects %2F to ~2F
    assert response.status_code == 404
    assert b"root:" not in response.content


def test_a_path_parameter_cannot_choose_the_file(dataset: dict[str, Path]) -> None:
    first = image_id(dataset["db"], dataset["train"] / "000000000009.jpg")
    response = get(dataset["db"], f"/-/imgindex/image/{first}?path=/etc/passwd")
    assert response.content == (dataset["train"] / "000000000009.jpg").read_bytes()


def test_removed_files_are_not_served(dataset: dict[str, Path]) -> None:
    gone = dataset["train"] / "000000000030.jpg"
    old_id = image_id(dataset["db"], gone)
    gone.unlink()
    assert get(dataset["db"], f"/-/imgindex/image/{old_id}").status_code == 404  # still indexed, not on disk
    scan(dataset["db"], {"train": [dataset["train"]]}, workers=1)
    gone.write_bytes(b"")  # even if something reappears at that path, the id is no longer in the index
    assert get(dataset["db"], f"/-/imgindex/image/{old_id}").status_code == 404
    assert get(dataset["db"], f"/-/imgindex/image/{old_id}/thumbnail").status_code == 404


def test_leakage_view_shows_both_splits_side_by_side(dataset: dict[str, Path]) -> None:
    page = get(dataset["db"], "/index/leakage")
    assert page.status_code == 200
    row = re.search(r"<tr>\s*<td[^>]*col-split_a.*?</tr>", page.text, re.S)
    assert row is not None
    cells = re.findall(r'<td class="col-(paths_a|paths_b)[^"]*">(.*?)</td>', row.group(0), re.S)
    assert [name for name, _ in cells] == ["paths_a", "paths_b"]
    train_id = image_id(dataset["db"], dataset["train"] / "000000000030.jpg")
    val_id = image_id(dataset["db"], dataset["val"] / "000000000030.jpg")
    assert [s.split("?")[0] for s in thumb_sources(cells[0][1])] == [f"/-/imgindex/image/{train_id}/thumbnail"]
    assert [s.split("?")[0] for s in thumb_sources(cells[1][1])] == [f"/-/imgindex/image/{val_id}/thumbnail"]


def test_duplicate_groups_show_every_member(dataset: dict[str, Path]) -> None:
    page = get(dataset["db"], "/index/duplicate_groups")
    assert len(thumb_sources(page.text)) == 2  # 000000000009.jpg and its copy
    assert "copy of 000000000009.jpg" in page.text


def canned(db: Path) -> set[str]:
    return {q["name"] for q in get(db, "/index.json").json()["queries"]}


def test_canned_queries_offered_for_the_tables_present(dataset: dict[str, Path]) -> None:
    db = dataset["db"]
    everything = {
        "duplicates_within_split",
        "leakage_between_splits",
        "unreadable_files",
        "near_duplicates",
        "class_frequency",
        "label_problem_list",
        "scenes_between_splits",
        "conflicting_labels",
    }
    quality = {"quality_overview"} | {f"quality_flag_{flag.name}" for flag in FLAGS}
    assert canned(db) == everything | quality
    with sqlite3.connect(db) as conn:  # an index written before the near, label and quality stages existed
        for table in ("near_pairs", "labels", "label_problems", "quality_flags", "quality_outliers"):
            conn.execute(f"drop table {table}")
        for view in ("quality", "quality_summary", "quality_rule"):
            conn.execute(f"drop view {view}")
    assert canned(db) == {
        "duplicates_within_split",
        "leakage_between_splits",
        "unreadable_files",
        "scenes_between_splits",
        "conflicting_labels",
    }


def query_rows(db: Path, query: str) -> list[dict[str, Any]]:
    name, _, args = query.partition("?")
    response = get(db, f"/{db.stem}/{name}.json?_shape=objects&{args}")
    assert response.status_code == 200, response.text
    return list(response.json()["rows"])


def test_canned_queries_answer(dataset: dict[str, Path]) -> None:
    db = dataset["db"]
    rows = lambda query: query_rows(db, query)  # noqa: E731
    assert [r["split"] for r in rows("duplicates_within_split?split=train")] == ["train"]
    assert rows("duplicates_within_split?split=val") == []
    leak = rows("leakage_between_splits?split_a=train&split_b=val")
    assert [(r["n_a"], r["n_b"]) for r in leak] == [(1, 1)]
    assert [r["path"] for r in rows("unreadable_files")] == [str(dataset["val"] / "broken.jpg")]


def test_near_duplicates_query_leaves_different_pairs_out(dataset: dict[str, Path]) -> None:
    db = dataset["db"]
    copy = image_id(db, dataset["train"] / "copy of 000000000009.jpg")
    other = image_id(db, dataset["train"] / "000000000030.jpg")
    with sqlite3.connect(db) as conn:
        conn.execute(
            "insert into near_pairs values (?, ?, 1, 40, 'different', null, null, null)", sorted([copy, other])
        )
    near = query_rows(db, "near_duplicates?distance=1")
    assert sorted(r["kind"] for r in near) == ["byte-identical", "copy"]
    pairs = {(Path(r["path_a"]).name, Path(r["path_b"]).name) for r in near}
    assert ("000000000030.jpg", "000000000030.jpg") in pairs  # the re-encoded copy in val
    assert len(query_rows(db, "near_duplicates")) == 2  # the default distance covers them


def test_class_frequency_and_label_problems_from_real_labels(tmp_path: Path) -> None:
    root = tmp_path / "coco8"
    shutil.copytree(DATA / "coco8", root)
    db = tmp_path / "labelled.db"
    scan(db, {"train": [root / "images" / "train"], "val": [root / "images" / "val"]}, workers=1)
    expected: dict[tuple[str, int], int] = {}
    for split in ("train", "val"):
        for label_file in (root / "labels" / split).glob("*.txt"):
            for line in label_file.read_text().split("\n"):
                if line.strip():
                    key = (split, int(line.split()[0]))
                    expected[key] = expected.get(key, 0) + 1
    frequency = {(r["split"], r["class_id"]): r["labels"] for r in query_rows(db, "class_frequency")}
    assert frequency == expected
    problems = query_rows(db, "label_problem_list?split=train")
    assert problems and {r["split"] for r in problems} == {"train"}
    table = get(db, "/labelled/label_problems.json?_facet=kind")  # the table itself, not hidden by the query
    assert table.status_code == 200 and table.json()["table"] == "label_problems"
    assert table.json()["facet_results"]["kind"]["results"]
    assert get(db, "/labelled/label_conflicts.json").json()["table"] == "label_conflicts"
    assert len(thumb_sources(get(db, "/labelled/labels").text)) == sum(expected.values())


def test_near_duplicates_page_shows_thumbnails(dataset: dict[str, Path]) -> None:
    assert len(thumb_sources(get(dataset["db"], "/index/near_duplicates?distance=0").text)) == 4


def test_facets_on_split_and_format(dataset: dict[str, Path]) -> None:
    facets = get(dataset["db"], "/index/images.json").json()["facet_results"]
    assert {"split", "format"} <= set(facets)
    counts = {item["value"]: item["count"] for item in facets["split"]["results"]}
    assert counts == {"train": 3, "val": 2}


def test_imgindex_sql_functions_in_datasette(dataset: dict[str, Path]) -> None:
    response = get(
        dataset["db"], "/index.json", params={"sql": "select hamming('ff00', '0f01') as d", "_shape": "array"}
    )
    assert response.json() == [{"d": 5}]


def test_other_databases_are_left_alone(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("create table images (id integer primary key, path text)")
        conn.execute("insert into images (path) values ('/etc/passwd')")
    assert get(other, "/other.json").json()["queries"] == []
    assert "imgindex-thumb" not in get(other, "/other/images").text
    assert get(other, "/-/imgindex/image/1").status_code == 404


def test_serve_needs_an_existing_index(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["serve", "--db", str(tmp_path / "missing.db")])
    assert result.exit_code != 0
    assert "imgindex scan" in result.output


def test_identical_files_show_their_images(dataset: dict[str, Path]) -> None:
    page = get(dataset["db"], "/index/identical_files")
    assert len(thumb_sources(page.text)) == 2  # 000000000009.jpg and its byte copy


def test_a_file_changed_since_indexing_is_served_only_after_a_rescan(dataset: dict[str, Path]) -> None:
    target = dataset["train"] / "000000000030.jpg"
    number = image_id(dataset["db"], target)
    target.unlink()
    target.symlink_to("/etc/passwd")  # the indexed path now leads somewhere else
    assert get(dataset["db"], f"/-/imgindex/image/{number}").status_code == 404
    target.unlink()
    shutil.copy(COCO8_09, target)
    assert get(dataset["db"], f"/-/imgindex/image/{number}").status_code == 404
    scan(dataset["db"], {"train": [dataset["train"]]}, workers=1)
    response = get(dataset["db"], f"/-/imgindex/image/{image_id(dataset['db'], target)}")
    assert response.status_code == 200 and response.content == COCO8_09.read_bytes()


def test_bookkeeping_tables_are_hidden_from_the_database_page(dataset: dict[str, Path]) -> None:
    tables = {t["name"]: t["hidden"] for t in get(dataset["db"], "/index.json").json()["tables"]}
    assert tables["images"] is False and tables["labels"] is False
    assert tables["_sqlite_migrations"] is True and tables["near_stale"] is True


RUBY = DATA / "rubyrizz_yolo"
RUBY_4 = "image_4_jpg.rf.c2791d2b2b70280515c0077b11b0f5a9"
RUBY_8 = "image_8_jpg.rf.5965c7a5671eb68f30c0eca3386c62c7"
RUBY_NAMES = ["Blue", "Green", "Orange", "Red", "White", "Yellow"]  # data.yaml
COPY_NAME = "copy <i>4 & 'co'"  # a name that must be escaped wherever it is shown


@pytest.fixture()
def labelled(tmp_path: Path) -> dict[str, Any]:
    """rubyrizz (YOLO, data.yaml names) with a byte copy of a valid image in train (its label
    file carries one malformed row more) and a re-encoded copy of another valid image."""
    root = tmp_path / "ruby"
    shutil.copytree(RUBY, root)
    valid, train = root / "valid", root / "train"
    shutil.copy(valid / "images" / f"{RUBY_4}.jpg", train / "images" / f"{COPY_NAME}.jpg")
    rows = (valid / "labels" / f"{RUBY_4}.txt").read_text().strip()
    (train / "labels" / f"{COPY_NAME}.txt").write_text(rows + "\n9 0.5\n")
    with Image.open(valid / "images" / f"{RUBY_8}.jpg") as picture:
        picture.save(valid / "images" / "image_8 again.jpg", quality=60)
    shutil.copy(valid / "labels" / f"{RUBY_8}.txt", valid / "labels" / "image_8 again.txt")
    db = tmp_path / "ruby.db"
    scan(db, {s: [root / s] for s in ("train", "valid", "test")}, workers=1)
    return {"db": db, "root": root, "original": valid / "images" / f"{RUBY_4}.jpg"}


def review_url(number: int) -> str:
    return f"/-/imgindex/image/{number}/review"


def label_rows(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines() if len(line.split()) == 5]


def test_review_page_draws_the_label_boxes_with_class_names(labelled: dict[str, Any]) -> None:
    db, original = labelled["db"], labelled["original"]
    page = get(db, review_url(image_id(db, original)))
    assert page.status_code == 200
    rows = label_rows(labelled["root"] / "valid" / "labels" / f"{RUBY_4}.txt")
    svg = re.search(r'<svg class="imgindex-boxes"[^>]*>(.*?)</svg>', page.text, re.S)
    assert svg is not None
    assert len(re.findall(r"<rect\b", svg.group(1))) == len(rows) == 9
    drawn = re.findall(r"<title>([^<]*)</title>", svg.group(1))
    assert sorted(drawn) == sorted(RUBY_NAMES[int(r[0])] for r in rows)
    with Image.open(original) as picture:
        width, height = picture.size
    assert f'viewBox="0 0 {width} {height}"' in svg.group(0)
    first = rows[0]  # its box, in the labels table, in pixels of the image
    cx, cy, w, h = (float(v) for v in first[1:])
    corner = f"{(cx - w / 2) * width:.0f}, {(cy - h / 2) * height:.0f}, "
    assert f"<td>{RUBY_NAMES[int(first[0])]}</td><td>{corner}" in page.text


def test_review_page_picture_is_the_indexed_file(labelled: dict[str, Any]) -> None:
    db, original = labelled["db"], labelled["original"]
    page = get(db, review_url(image_id(db, original)))
    source = re.search(r'<img class="imgindex-picture-img" src="([^"]+)"', page.text)
    assert source is not None
    assert get(db, source.group(1).replace("&amp;", "&")).content == original.read_bytes()


def grade_sections(html: str) -> dict[str, str]:
    """Heading of each neighbour section -> its HTML."""
    parts = re.findall(r'<(?:section|details) class="imgindex-grade-section">(.*?)</(?:section|details)>', html, re.S)
    return {re.sub(r"<[^>]+>", "", p.split("<small>")[0]).strip(): p for p in parts}


def test_review_page_shows_a_byte_identical_partner_with_its_grade(labelled: dict[str, Any]) -> None:
    db, original = labelled["db"], labelled["original"]
    copy = labelled["root"] / "train" / "images" / f"{COPY_NAME}.jpg"
    page = get(db, review_url(image_id(db, original))).text
    sections = grade_sections(page)
    assert list(sections) == ["Byte-identical copies (1)"]
    partner = sections["Byte-identical copies (1)"]
    assert '<span class="imgindex-grade">byte-identical</span>' in partner
    assert f'href="{review_url(image_id(db, copy))}?db=ruby"' in partner
    assert "<b>train</b>" in partner and "other split" in partner
    thumb = get(db, thumb_sources(partner)[0])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    # and back: the copy's page names the original
    back = grade_sections(get(db, review_url(image_id(db, copy))).text)["Byte-identical copies (1)"]
    assert f'href="{review_url(image_id(db, original))}?db=ruby"' in back


def test_review_page_says_a_copy_is_labelled_otherwise(labelled: dict[str, Any]) -> None:
    db, root, original = labelled["db"], labelled["root"], labelled["original"]
    rows = label_rows(root / "valid" / "labels" / f"{RUBY_4}.txt")
    first = int(rows[0][0])
    rows[0][0] = str((first + 1) % 6)  # the copy in train calls its first cube another colour
    (root / "train" / "labels" / f"{COPY_NAME}.txt").write_text("\n".join(" ".join(r) for r in rows) + "\n")
    scan(db, {s: [root / s] for s in ("train", "valid", "test")}, workers=1)
    page = get(db, review_url(image_id(db, original))).text
    partner = grade_sections(page)["Byte-identical copies (1)"]
    conflict = re.search(r'<span class="imgindex-conflict">label conflict: ([^<]*)</span>', partner)
    assert conflict is not None and conflict.group(1).startswith("classes differ: first has")
    assert f"{RUBY_NAMES[first]} (class {first})" in conflict.group(1)
    assert "1 labelled otherwise (label conflict)." in page


def test_review_page_groups_neighbours_by_grade(labelled: dict[str, Any]) -> None:
    db = labelled["db"]
    again = image_id(db, labelled["root"] / "valid" / "images" / "image_8 again.jpg")
    with sqlite3.connect(db) as conn:  # grades a later version may write, and one no version knows
        others = [r[0] for r in conn.execute("select id from images where id <> ? order by id", [again])]
        for other, kind in zip(others, ["similar-scene", "rejected", "odd-grade", "byte-identical"]):
            a, b = sorted([again, other])
            conn.execute(
                "insert or replace into near_pairs (a, b, distance, distance_256, kind) values (?, ?, 5, 40, ?)",
                [a, b, kind],
            )
    page = get(db, review_url(again)).text
    headings = list(grade_sections(page))
    assert headings == [
        "Byte-identical copies (1)",
        "Copies (1)",  # the re-encoded original, stored as 'perceptual'
        "Same scene, another photo (1)",
        "odd-grade (1)",
        "Judged different (1)",
    ]
    scene = grade_sections(page)["Same scene, another photo (1)"]
    assert "not a duplicate" in scene and "cop" not in scene.split("<small>")[1].split("</small>")[0]
    assert '<details class="imgindex-grade-section"><summary>Judged different' in page
    assert "2 duplicates among 5 near neighbours" in page


def test_review_page_lists_the_label_problems_of_its_file(labelled: dict[str, Any]) -> None:
    db = labelled["db"]
    copy = labelled["root"] / "train" / "images" / f"{COPY_NAME}.jpg"
    page = get(db, review_url(image_id(db, copy))).text
    problems = page.split('id="problems"')[1]
    line = len(label_rows(labelled["root"] / "valid" / "labels" / f"{RUBY_4}.txt")) + 1  # the row added
    assert "malformed_row" in problems and f"<td>{line}</td>" in problems
    assert "No label problems" in get(db, review_url(image_id(db, labelled["original"]))).text


def test_review_page_escapes_what_it_shows(labelled: dict[str, Any]) -> None:
    db = labelled["db"]
    page = get(db, review_url(image_id(db, labelled["root"] / "train" / "images" / f"{COPY_NAME}.jpg"))).text
    assert "<i>4" not in page
    assert "copy &lt;i&gt;4 &amp; &#39;co&#39;.jpg" in page


def test_review_page_of_an_unknown_image_is_a_404(labelled: dict[str, Any]) -> None:
    for url in (review_url(999999), "/-/imgindex/image/x/review", "/-/imgindex/image/-1/review"):
        response = get(labelled["db"], url)
        assert response.status_code == 404
        assert "Traceback" not in response.text


def test_review_page_of_an_unreadable_file_says_why(dataset: dict[str, Path]) -> None:
    page = get(dataset["db"], review_url(image_id(dataset["db"], dataset["val"] / "broken.jpg")))
    assert page.status_code == 200
    assert "could not be read when it was indexed" in page.text
    assert "imgindex-picture-img" not in page.text


def test_thumbnails_and_the_images_row_page_link_to_the_review_page(dataset: dict[str, Path]) -> None:
    db = dataset["db"]
    number = image_id(db, dataset["val"] / "000000000030.jpg")
    leakage = get(db, "/index/leakage").text
    assert f'<a href="{review_url(number)}?db=index"><img class="imgindex-thumb"' in leakage
    row_page = get(db, f"/index/images/{number}").text
    assert f'href="{review_url(number)}?db=index">review this image</a>' in row_page
    assert "review this image" not in get(db, "/index/images").text  # the table links ids to rows


def test_database_page_leads_with_the_canned_queries(dataset: dict[str, Path]) -> None:
    page = get(dataset["db"], "/index").text
    queries = get(dataset["db"], "/index.json").json()["queries"]
    titles = [q["title"] for q in queries if not q["name"].startswith("quality_flag_")]  # linked from the overview
    start = page.index('<ul class="bullets imgindex-start">')
    listed = re.findall(r'<li><a href="/index/[a-z_]+">([^<]+)</a>', page[start:])
    assert listed[: len(titles)] == titles
    assert start < page.index('<form class="sql"') < page.index('<h2 id="tables">')


# ---------------------------------------------------------------- image quality


def quality_folders(root: Path) -> dict[str, Path]:
    """train: the coco128 sample and coco8's train photos (colour), with edge cases made from one of
    them: a very dark copy, a grey copy, a 4:1 strip, a washed-out copy, a blurred copy, a tiny one
    and a flat colour; val: coco8's val photos."""
    train, val = root / "train", root / "val"
    train.mkdir(parents=True)
    val.mkdir()
    for photo in (DATA / "coco128_sample" / "images" / "train2017").glob("*.jpg"):
        shutil.copy(photo, train / photo.name)
    for photo in (DATA / "coco8" / "images" / "train").glob("*.jpg"):
        shutil.copy(photo, train / f"coco8 {photo.name}")
    shutil.copytree(DATA / "coco8" / "images" / "val", val, dirs_exist_ok=True)
    with Image.open(COCO8_09) as opened:
        photo = opened.convert("RGB")
    photo.point(lambda v: v // 6).save(train / "dark.jpg", quality=95)
    photo.convert("L").save(train / "grey.jpg", quality=95)
    photo.crop((0, 0, 640, 160)).save(train / "strip.jpg", quality=95)
    photo.point(lambda v: 245 + v // 26).save(train / "light.jpg", quality=95)
    photo.filter(ImageFilter.GaussianBlur(12)).save(train / "blurred.jpg", quality=95)
    photo.resize((48, 36)).save(train / "tiny.jpg", quality=95)
    Image.new("RGB", (640, 480), (120, 60, 30)).save(train / "flat.png")
    return {"train": train, "val": val}


def cli_ok(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def judged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The quality folders scanned through the CLI (read only by the tests that share it)."""
    root = tmp_path_factory.mktemp("quality")
    folders = quality_folders(root)
    db = root / "index.db"
    cli_ok("scan", "--db", str(db), "--workers", "1", "-q", f"train={folders['train']}", f"val={folders['val']}")
    return {"db": db, **folders}


def flagged(db: Path, flag: str) -> dict[int, float | None]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("select image_id, value from quality_flags where flag = ?", [flag]).fetchall())


def stored_rule(db: Path, flag: str) -> str:
    with sqlite3.connect(db) as conn:
        return str(conn.execute("select rule from quality_rule where flag = ?", [flag]).fetchone()[0])


def description(html: str) -> str:
    found = re.search(r'<div class="metadata-description">(.*?)</div>', html, re.S)
    assert found is not None
    return found.group(1)


def test_the_edge_cases_carry_their_flags(judged: dict[str, Path]) -> None:
    db, train = judged["db"], judged["train"]
    assert image_id(db, train / "dark.jpg") in flagged(db, "dark")
    assert image_id(db, train / "grey.jpg") in flagged(db, "grayscale")
    assert image_id(db, train / "strip.jpg") in flagged(db, "odd_aspect_ratio")


@pytest.mark.parametrize("flag", [flag.name for flag in FLAGS])
def test_each_flag_query_lists_its_flagged_images_with_thumbnails(judged: dict[str, Path], flag: str) -> None:
    db = judged["db"]
    query = f"quality_flag_{flag}"
    assert query in canned(db)
    rows = query_rows(db, query)
    stored = flagged(db, flag)
    assert {r["image_id"]: r["value"] for r in rows} == stored
    assert all(flag in r["flags"].split(",") for r in rows)
    page = get(db, f"/index/{query}")
    assert page.status_code == 200
    assert escape(stored_rule(db, flag)) in description(page.text)  # the sentence `imgindex quality` prints
    sources = thumb_sources(page.text)
    assert len(sources) == len(rows)
    for row, source in zip(rows, sources):
        assert source.split("?")[0] == f"/-/imgindex/image/{row['image_id']}/thumbnail"
        assert f'href="/-/imgindex/image/{row["image_id"]}/review?db=index"' in page.text
    if sources:
        thumb = get(db, sources[0])
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"


def test_flag_queries_put_the_worst_first(judged: dict[str, Path]) -> None:
    db, train = judged["db"], judged["train"]
    values = lambda flag: [r["value"] for r in query_rows(db, f"quality_flag_{flag}")]  # noqa: E731
    dark = query_rows(db, "quality_flag_dark")
    assert dark[0]["image_id"] == image_id(db, train / "dark.jpg")  # the darkest first
    assert values("dark") == sorted(values("dark"))
    assert values("light") == sorted(values("light"), reverse=True)
    assert values("outlier") == sorted(values("outlier"), reverse=True)
    sizes = values("odd_size")
    assert sizes == sorted(sizes, key=lambda v: max(v, 1 / v), reverse=True)
    assert query_rows(db, "quality_flag_dark?split=val") == [] and dark  # the split parameter
    assert {r["split"] for r in query_rows(db, "quality_flag_odd_aspect_ratio?split=train")} == {"train"}


def test_the_rule_on_the_page_follows_a_new_threshold(tmp_path: Path) -> None:
    folders = quality_folders(tmp_path / "data")
    db = tmp_path / "index.db"
    cli_ok("scan", "--db", str(db), "--workers", "1", "-q", f"train={folders['train']}", f"val={folders['val']}")
    before = stored_rule(db, "dark")
    assert escape(before) in description(get(db, "/index/quality_flag_dark").text)
    cli_ok("quality", "--db", str(db), "--threshold", "dark=0.5")
    after = stored_rule(db, "dark")
    assert after != before and "0.5" in after
    page = get(db, "/index/quality_flag_dark").text
    assert escape(after) in description(page) and escape(before) not in page
    rows = query_rows(db, "quality_flag_dark")
    assert {r["image_id"] for r in rows} == set(flagged(db, "dark"))
    assert len(rows) > 1  # more images are dark under the higher threshold
    overview = {r["flag"]: r["rule"] for r in query_rows(db, "quality_overview?split=train")}
    assert overview["dark"] == after


def test_quality_overview_counts_per_split_and_flag(judged: dict[str, Path]) -> None:
    db = judged["db"]
    rows = query_rows(db, "quality_overview")
    with sqlite3.connect(db) as conn:
        summary = {(s, f): n for s, f, n in conn.execute("select split, flag, images from quality_summary")}
        judged_images = dict(conn.execute("select split, count(*) from quality group by split").fetchall())
    assert {(r["split"], r["flag"]): r["flagged"] for r in rows if r["flagged"]} == summary
    assert {(r["split"], r["flag"]) for r in rows} == {(s, f.name) for s in ("train", "val") for f in FLAGS}
    assert all(r["images"] == judged_images[r["split"]] for r in rows)
    assert all(r["rule"] == stored_rule(db, r["flag"]) for r in rows)
    page = get(db, "/index/quality_overview").text
    assert '<a class="imgindex-flag" href="/index/quality_flag_dark?split=train">dark</a>' in page


def test_database_page_lists_the_quality_overview_with_each_flag(judged: dict[str, Path]) -> None:
    page = get(judged["db"], "/index").text
    start = page[page.index('<ul class="bullets imgindex-start">') :]
    overview = re.search(r'<li><a href="/index/quality_overview">.*?</li>', start, re.S)
    assert overview is not None
    links = re.findall(r'<a href="/index/quality_flag_([a-z_]+)">', overview.group(0))
    assert links == [flag.name for flag in FLAGS]


def test_quality_view_is_described_and_faceted(judged: dict[str, Path]) -> None:
    data = get(judged["db"], "/index/quality.json").json()
    assert {"split", "flags"} <= set(data["facet_results"])
    page = get(judged["db"], "/index/quality").text
    assert "one row per readable image" in page
    assert len(thumb_sources(page)) == len(data["rows"])
    tables = {t["name"]: t["hidden"] for t in get(judged["db"], "/index.json").json()["tables"]}
    assert tables["quality_stale"] is True and tables["quality_flags"] is False


def test_review_page_shows_the_quality_flags_and_measures(judged: dict[str, Path]) -> None:
    db, train = judged["db"], judged["train"]
    number = image_id(db, train / "dark.jpg")
    page = get(db, review_url(number)).text
    block = page.split('<h2 id="quality">')[1].split("<h2")[0]
    flags = flagged(db, "dark")
    assert f'<a href="/index/quality_flag_dark?split=train">dark</a></span> {flags[number]:.4g}' in block
    rule = stored_rule(db, "dark").removeprefix("dark: ")
    assert escape(rule) in block
    assert "brightness_p95 <b>" in block and "entropy <b>" in block
    with sqlite3.connect(db) as conn:
        carried = [f for (f,) in conn.execute("select flag from quality_flags where image_id = ?", [number])]
    listed = re.findall(r'quality_flag_([a-z_]+)\?split=train">', block)
    assert sorted(listed) == sorted(carried)
    verdict = re.search(r'<p class="imgindex-verdict">(.*?)</p>', page, re.S)
    assert verdict is not None and "Quality flags: dark" in verdict.group(1)
    plain = image_id(db, judged["val"] / "000000000036.jpg")
    assert not [f for f in FLAGS if plain in flagged(db, f.name)]
    assert "No quality flags." in get(db, review_url(plain)).text


def test_review_page_says_why_the_verdict_regraded_a_pair(tmp_path: Path) -> None:
    db = tmp_path / "reshots.db"
    folder = DATA / "chess_reshots"  # one knight turned between two shots, labels alike
    result = CliRunner().invoke(cli, ["scan", "--db", str(db), "-q", f"train={folder}"])
    assert result.exit_code == 0, result.output
    first, second = sorted(folder.glob("*.jpg"))
    sections = grade_sections(get(db, review_url(image_id(db, first))).text)
    scene = next(html for title, html in sections.items() if title.startswith("Same scene"))
    assert second.name in scene and "(a labelled object differs)" in scene
