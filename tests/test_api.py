"""The library API (imgindex.Index), the executor seam and the image columns' one definition."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from conftest import DATA, ROOT, invoke
from PIL import Image

import imgindex
from imgindex import Index, LabelOptions, store
from imgindex.executors import EXECUTORS, Inline, Result
from imgindex.extract import extract

TRAIN = DATA / "coco128_sample" / "images" / "train2017"
VAL = DATA / "coco8" / "images" / "val"


def test_a_python_user_scans_reads_leaks_and_writes_the_report(tmp_path: Path) -> None:
    with Index(tmp_path / "lib.db") as index:
        summary = index.scan({"train": TRAIN, "val": [str(VAL)]}, workers=1)
        assert (summary.new, summary.errors) == (20, 0)
        assert summary.labels is not None and summary.labels.formats == {"train": "yolo", "val": "yolo"}
        leaks = index.leakage()
        assert [pair["splits"] for pair in leaks] == [["train", "val"]]
        assert len(leaks[0]["groups"]) == 2
        lines = index.describe_duplicates()
        assert lines[0].startswith("Rule: imgindex rule")
        assert any("There are 2 duplicates between train and val" in line for line in lines)
        rows = index.query("select split, count(*) n from images group by split order by split")
        assert rows == [{"split": "train", "n": 16}, {"split": "val", "n": 4}]
        outcome = index.report(out_dir=tmp_path / "logs", title="lib")
    assert outcome.pdf.is_file() and outcome.summary.is_file()
    # the CLI reads the same index and says the same
    cli_doc = json.loads(invoke("duplicates", "--db", str(tmp_path / "lib.db"), "--json").output)
    assert cli_doc["intersections"] == leaks


def test_scan_remembers_the_label_options_it_was_given(tmp_path: Path) -> None:
    with Index(tmp_path / "opts.db") as index:
        first = index.scan({"val": VAL}, labels=LabelOptions(labels="none"), workers=1)
        again = index.scan({"val": VAL}, workers=1)  # no options: the stored ones
    assert first.labels is not None and first.labels.formats == {"val": "none"}
    assert again.labels is not None and again.labels.formats == {"val": "none"}
    assert (again.new, again.unchanged) == (0, 4)


def test_progress_callback_counts_every_extracted_file(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    with Index(tmp_path / "p.db") as index:
        index.scan({"train": TRAIN}, workers=1, on_progress=lambda done, total: seen.append((done, total)))
        index.scan({"train": TRAIN}, workers=1, on_progress=lambda done, total: seen.append((done, total)))
    assert seen == [(n, 16) for n in range(1, 17)]  # the unchanged re-scan extracts nothing


class Recording:
    """An executor of our own: runs inline, in reverse order, and remembers what it was given."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def run(self, paths: Sequence[str]) -> Iterator[Result]:
        self.paths.extend(paths)
        return Inline().run(list(reversed(paths)))


def test_another_executor_plugs_in_and_indexes_the_same_rows(tmp_path: Path) -> None:
    recording = Recording()
    with Index(tmp_path / "own.db") as own:
        own.scan({"train": TRAIN}, executor=recording)
    with Index(tmp_path / "pool.db") as pooled:
        pooled.scan({"train": TRAIN}, executor="processes", workers=2)
    assert sorted(recording.paths) == sorted(str(p) for p in TRAIN.glob("*.jpg"))
    query = "select path, sha256, dhash, dhash_256, pixel_hash, brightness, histogram from images order by path"
    assert rows(tmp_path / "own.db", query) == rows(tmp_path / "pool.db", query)


def test_scan_command_offers_the_registered_executors(tmp_path: Path) -> None:
    help_text = invoke("scan", "--help").output
    for name in EXECUTORS:
        assert name in help_text
    out = invoke("scan", "--db", str(tmp_path / "i.db"), "--executor", "inline", f"val={VAL}", "-q").output
    assert out.startswith("4 new")
    assert json.loads(rows(tmp_path / "i.db", "select arguments from scans")[0][0])["executor"] == "Inline"


def rows(db: Path, query: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


def test_every_image_column_is_written_by_extraction_or_the_scan(tmp_path: Path) -> None:
    with Index(tmp_path / "c.db") as index:
        columns = set(store.image_columns(index.db))
    extracted = set(extract(str(next(TRAIN.glob("*.jpg")))))
    from_scan = {"split", "path", "rel_path", "size", "mtime_ns", "path_bytes", "scan_id"}
    assert extracted | from_scan == columns


def test_an_unknown_image_key_is_an_error_not_dropped(tmp_path: Path) -> None:
    with Index(tmp_path / "u.db") as index:
        row = {"split": "s", "path": "/x.jpg", "rel_path": "x.jpg", "size": 1, "mtime_ns": 1, "focus_score": 3.0}
        with pytest.raises(ValueError, match="images has no column focus_score"):
            store.upsert_images(index.db, [row])
        assert index.query("select count(*) n from images") == [{"n": 0}]


def test_readme_documents_exactly_the_image_columns(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("**`images`**", 1)[1].split("\n\n", 2)[1]
    documented = {name for cell in re.findall(r"^\| (.+?) \|", table, re.M) for name in re.findall(r"`(\w+)`", cell)}
    with Index(tmp_path / "d.db") as index:
        assert documented == {"id", *store.image_columns(index.db)}


def test_package_exports_the_api() -> None:
    assert {"Index", "LabelOptions", "ScanSummary"} <= set(imgindex.__all__)
    assert (Path(imgindex.__file__).parent / "py.typed").is_file()


def test_a_folder_given_as_a_string_or_path_is_the_same_split(tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(folder / "a.png")
    with Index(tmp_path / "s.db") as index:
        first = index.scan({"x": str(folder)}, workers=1)
        second = index.scan({"x": [folder, folder]}, workers=1)
    assert (first.new, second.unchanged) == (1, 1)


def test_a_mistyped_folder_is_refused_and_the_split_kept(tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(folder / "a.png")
    (tmp_path / "note.txt").write_text("x")
    with Index(tmp_path / "s.db") as index:
        index.scan({"x": folder}, workers=1)
        cases = [
            ({"x": tmp_path / "imsg"}, "folder '.*imsg' does not exist"),
            ({"x": tmp_path / "note.txt"}, "is a file, not a folder"),
            ({"x": []}, "give at least one folder"),
            ({"": folder}, "split name ''"),
        ]
        for splits, says in cases:
            with pytest.raises(imgindex.SplitFolderError, match=says):
                index.scan(splits, workers=1)
        assert index.query("select count(*) n from images") == [{"n": 1}]
        assert index.query("select root from splits where name = 'x'") == [{"root": str(folder.resolve())}]


def test_an_unknown_rule_or_distance_is_a_value_error_that_names_the_choices(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    with Index(db) as index:
        index.scan({"val": VAL}, workers=1)
    with Index(db, readonly=True) as index:
        with pytest.raises(ValueError, match="no duplicate rule is called 'foo': the rules are imgindex"):
            index.duplicates(rule="foo")
        with pytest.raises(ValueError, match="max_distance must be a whole number of bits from 0 to 16"):
            index.duplicates(max_distance="4")  # type: ignore[arg-type]


def test_the_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    code = readme.split("### From Python", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    code = code.replace("coco/images/train2017", str(TRAIN)).replace("coco/images/val2017", str(VAL))
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    assert (tmp_path / "imgindex.db").is_file()
    assert (tmp_path / "logs" / "imgindex" / "Report.pdf").is_file()


def test_the_package_loads_its_api_when_first_used() -> None:
    """`import imgindex` loads no NumPy (the command sets up BLAS before it does); the API's
    names are there when asked for, and listed."""
    code = (
        "import sys, imgindex\n"
        "assert 'numpy' not in sys.modules\n"
        "assert {'Index', 'LabelOptions', 'MissingAnswers', 'ScanSummary'} <= set(dir(imgindex))\n"
        "assert imgindex.Index.__name__ == 'Index' and 'numpy' in sys.modules\n"
        "try:\n    imgindex.nothing\nexcept AttributeError as e:\n    print(e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    assert done.returncode == 0, done.stderr
    assert "has no attribute 'nothing'" in done.stdout
