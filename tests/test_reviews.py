"""A reviewer's verdicts: recorded from the CLI, applied by check, export, the report and the
served pages, kept across re-scans while the files are unchanged, dropped when one changes."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import DATA, SAMPLE_LABEL_GAPS, free_port, invoke, sql_rows, wait_http
from datasette.app import Datasette
from PIL import Image

from imgindex.report import build_report

TRAIN = DATA / "coco128_sample"
VAL = DATA / "coco8" / "images" / "val"  # 000000000036 and 000000000049 are re-encodes of TRAIN photos
RESHOTS = DATA / "chess_reshots"  # one knight turned between two shots: a similar scene
QUIET = SAMPLE_LABEL_GAPS
PAIR = ["train:images/train2017/000000000036.jpg", "val:000000000036.jpg"]


@pytest.fixture()
def leaky(tmp_path: Path) -> tuple[Path, Path]:
    val = tmp_path / "val"
    shutil.copytree(VAL, val)
    db = tmp_path / "leaky.db"
    invoke("scan", "--db", str(db), "-q", f"train={TRAIN}", f"val={val}")
    return db, val


def leak_findings(db: Path) -> int:
    doc = json.loads(invoke("check", "--db", str(db), *QUIET, "--json", ok=False).output)
    return int(next(r["findings"] for r in doc["rules"] if r["name"] == "leakage"))


def test_a_pair_reviewed_not_a_duplicate_stops_failing_and_survives_a_rescan(leaky: tuple[Path, Path]) -> None:
    db, val = leaky
    assert leak_findings(db) == 2
    out = invoke("review", "--db", str(db), "not-duplicate", *PAIR, "--note", "checked by eye").output
    assert "not-duplicate" in out and "review 1" in out
    assert leak_findings(db) == 1
    invoke("scan", "--db", str(db), "-q", f"train={TRAIN}", f"val={val}")  # nothing changed: the review holds
    assert leak_findings(db) == 1
    [row] = sql_rows(db, "select reason from verdict_pairs where reason like 'reviewed%'")
    assert row["reason"] == "reviewed: not a duplicate"
    listed = invoke("review", "--db", str(db), "--list").output
    assert "1  not-duplicate" in listed and "applies" in listed and "checked by eye" in listed
    with Image.open(val / "000000000036.jpg") as im:  # the file is edited: the review no longer applies
        im.rotate(180).save(val / "000000000036.jpg", quality=95)
    invoke("scan", "--db", str(db), "-q", f"train={TRAIN}", f"val={val}")
    assert "changed or left the index" in invoke("review", "--db", str(db), "--list").output


def test_ignore_and_undo(leaky: tuple[Path, Path], tmp_path: Path) -> None:
    db, _ = leaky
    invoke("review", "--db", str(db), "ignore", "val:000000000049.jpg")
    assert leak_findings(db) == 1
    out = tmp_path / "export"
    invoke("export", "--db", str(db), str(out), "--format", "list")
    assert "000000000049" not in (out / "removed.csv").read_text()  # ignored: neither a leak nor removed
    review_id = sql_rows(db, "select id from reviews")[0]["id"]
    invoke("review", "--db", str(db), "--undo", str(review_id))
    assert leak_findings(db) == 2


def test_a_similar_scene_reviewed_as_a_duplicate_is_grouped(tmp_path: Path) -> None:
    db = tmp_path / "reshots.db"
    invoke("scan", "--db", str(db), "-q", f"train={RESHOTS}")
    first, second = sorted(p.name for p in RESHOTS.glob("*.jpg"))
    doc = json.loads(invoke("duplicates", "--db", str(db), "--json").output)
    assert doc["splits"]["train"]["groups"] == []
    invoke("review", "--db", str(db), "duplicate", f"train:{first}", f"train:{second}")
    doc = json.loads(invoke("duplicates", "--db", str(db), "--json").output)
    assert [sorted(Path(p).name for p in g) for g in doc["splits"]["train"]["groups"]] == [[first, second]]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["not-duplicate", "val:000000000036.jpg"], "two or more files"),
        (["ignore", "val:nothere.jpg"], "is not an indexed image"),
        (["maybe", "val:000000000036.jpg"], "Invalid value"),
        (["--undo", "99"], "no review 99"),
    ],
)
def test_misuse_is_one_line(leaky: tuple[Path, Path], args: list[str], says: str) -> None:
    db, _ = leaky
    result = invoke("review", "--db", str(db), *args, ok=False)
    assert result.exit_code != 0 and says in result.output
    assert "Traceback" not in result.output


def served_page(db: Path, allow: bool, path: str, post: bool = False) -> tuple[int, str]:
    datasette = Datasette([str(db)], metadata={"plugins": {"imgindex": {"allow_reviews": allow}}})

    async def run() -> tuple[int, str]:
        client = datasette.client
        response = await (client.post(path, data={"verdict": "ignore"}) if post else client.get(path))
        return response.status_code, response.text

    return asyncio.run(run())


def test_serve_records_nothing_without_the_flag_nor_without_a_csrf_token(leaky: tuple[Path, Path]) -> None:
    db, _ = leaky
    image_id = sql_rows(db, "select id from images where split = 'val' and rel_path = '000000000036.jpg'")[0]["id"]
    page = f"/-/imgindex/image/{image_id}/review?db={db.stem}"
    verdict = f"/-/imgindex/image/{image_id}/verdict?db={db.stem}"
    assert "imgindex-review-action" not in served_page(db, False, page)[1]
    assert 'data-verdict="not-duplicate"' in served_page(db, True, page)[1]
    assert served_page(db, False, verdict, post=True)[0] == 403  # reviews are off
    assert served_page(db, True, verdict, post=True)[0] == 403  # no CSRF token
    assert sql_rows(db, "select count(*) n from reviews")[0]["n"] == 0


def test_the_report_applies_a_review_as_the_cli_does(leaky: tuple[Path, Path], tmp_path: Path) -> None:
    db, _ = leaky
    invoke("review", "--db", str(db), "not-duplicate", *PAIR)
    outcome = build_report(db, tmp_path / "logs", title="t")
    summary = json.loads((outcome.directory / "summary.json").read_text())
    feature = json.dumps(next(f for f in summary["features"] if f["name"] == "ImageDuplicates"))
    sentence = "There are 1 duplicates between train and val"
    assert sentence in feature and sentence in invoke("duplicates", "--db", str(db)).output


def test_imgindex_serve_without_the_flag_refuses_a_review(leaky: tuple[Path, Path]) -> None:
    """A real `imgindex serve` process, started without --allow-reviews."""
    db, _ = leaky
    image_id = sql_rows(db, "select id from images where split = 'val' and rel_path = '000000000036.jpg'")[0]["id"]
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "imgindex", "serve", "--db", str(db), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/")
        with httpx.Client(base_url=base) as client:
            page = client.get(f"/-/imgindex/image/{image_id}/review?db={db.stem}")
            token = client.cookies.get("ds_csrftoken") or "x"
            posted = client.post(
                f"/-/imgindex/image/{image_id}/verdict?db={db.stem}", data={"verdict": "ignore", "csrftoken": token}
            )
        assert page.status_code == 200 and "imgindex-review-action" not in page.text
        assert posted.status_code == 403 and "--allow-reviews" in posted.text
    finally:
        server.terminate()
        server.wait(10)
    assert sql_rows(db, "select count(*) n from reviews")[0]["n"] == 0
