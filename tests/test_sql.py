"""`imgindex sql`: read-only queries printed as a table, JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from conftest import DATA, invoke, run_imgindex


@pytest.fixture
def indexed(db: Path) -> Path:
    invoke("scan", "--db", str(db), f"val={DATA / 'coco8' / 'images' / 'val'}", "-q")
    return db


def test_table_output(indexed: Path) -> None:
    out = invoke("sql", "--db", str(indexed), "select split, count(*) as n from images group by split").output
    lines = out.splitlines()
    assert lines[0].split() == ["split", "n"] and lines[2].split() == ["val", "4"]


def test_json_and_csv_output(indexed: Path) -> None:
    q = "select rel_path, width from images order by rel_path limit 2"
    rows = json.loads(invoke("sql", "--db", str(indexed), "--json", q).output)
    assert rows == [{"rel_path": "000000000036.jpg", "width": 481}, {"rel_path": "000000000042.jpg", "width": 640}]
    table = list(csv.DictReader(io.StringIO(invoke("sql", "--db", str(indexed), "--csv", q).output)))
    assert [r["rel_path"] for r in table] == ["000000000036.jpg", "000000000042.jpg"]


def test_hamming_function(indexed: Path) -> None:
    q = "select hamming('0026273b2b19550e', '0026273b2b19550f') as d, hamming(dhash, dhash) as z from images limit 1"
    assert json.loads(invoke("sql", "--db", str(indexed), "--json", q).output) == [{"d": 1, "z": 0}]


def test_writes_are_refused(indexed: Path) -> None:
    result = invoke("sql", "--db", str(indexed), "delete from images", ok=False)
    assert result.exit_code == 1 and "only reads" in result.output
    assert json.loads(invoke("sql", "--db", str(indexed), "--json", "select count(*) n from images").output) == [
        {"n": 4}
    ]


def test_bad_sql_names_the_error(indexed: Path) -> None:
    result = invoke("sql", "--db", str(indexed), "select nope from images", ok=False)
    assert "no such column: nope" in result.output


def test_contradictory_or_empty_requests_are_refused_with_what_to_do(indexed: Path) -> None:
    cases = [
        (["sql", "--json", "--csv", "select 1"], "--json and --csv do not go together"),
        (["sql", "  "], "Give a query, e.g. imgindex sql"),
        (["sql", "select 1; select 2"], "one statement at a time. The tables"),
        (["duplicates", "--rule", "datagradients", "--max-distance", "4"], "--max-distance is the imgindex rule's"),
        (["scan", "--labels", "none", "--coco", str(indexed), str(DATA)], "--labels none reads no labels"),
    ]
    for args, says in cases:
        result = invoke(*args[:1], "--db", str(indexed), *args[1:], ok=False)
        assert result.exit_code in (1, 2) and says in result.output and "Traceback" not in result.output, result.output
    assert invoke("duplicates", "--db", str(indexed), "--rule", "datagradients").exit_code == 0


def test_subprocess_round_trip(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    assert run_imgindex("scan", "--db", str(db), str(DATA / "imagehash")).returncode == 0
    proc = run_imgindex("sql", "--db", str(db), "--json", "select dhash from images")
    assert json.loads(proc.stdout) == [{"dhash": "0026273b2b19550e"}]
