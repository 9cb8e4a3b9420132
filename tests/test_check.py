"""`imgindex check`: the index held to rules for CI, on real images: coco8's val photos are
re-encodes of coco128's, so scanning coco128's sample as train beside coco8's val is a real leak."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import DATA, SAMPLE_LABEL_GAPS, invoke, run_imgindex
from PIL import Image

from imgindex import Index

TRAIN = DATA / "coco128_sample"  # 16 coco128 photos with their YOLO labels
VAL = DATA / "coco8" / "images" / "val"  # 4 photos, 2 of them re-encodes of TRAIN's
QUIET = SAMPLE_LABEL_GAPS


@pytest.fixture()
def leaky(tmp_path: Path) -> Path:
    db = tmp_path / "leaky.db"
    invoke("scan", "--db", str(db), "-q", f"train={TRAIN}", f"val={VAL}")
    return db


def check(db: Path, *args: str, code: int) -> str:
    result = invoke("check", "--db", str(db), *args, ok=False)
    assert result.exit_code == code, result.output
    return result.output


def test_a_real_leak_fails_with_exit_1_and_the_junit_file_names_the_rule(leaky: Path, tmp_path: Path) -> None:
    junit = tmp_path / "check.xml"
    out = check(leaky, *QUIET, "--junit", str(junit), code=1)
    assert "FAIL leakage: 2 finding(s), at most 0" in out
    assert "train:images/train2017/000000000036.jpg = val:000000000036.jpg" in out
    assert "1 of 9 rules failed: leakage." in out
    suite = ET.parse(junit).getroot()
    failed = {case.get("name") for case in suite.iter("testcase") if case.find("failure") is not None}
    assert failed == {"leakage"}
    assert suite.get("failures") == "1" and int(suite.get("skipped") or 0) >= 8
    assert "000000000049.jpg" in (suite.find("testcase[@name='leakage']/failure").text or "")  # type: ignore[union-attr]


def test_the_same_index_passes_when_the_rule_allows_the_share(leaky: Path) -> None:
    """2 of val's 4 images have a copy in train: 50 %."""
    assert "PASS leakage" in check(leaky, *QUIET, "--rule", "leakage=50%", code=0)
    out = check(leaky, *QUIET, "--rule", "leakage=49.9%", code=1)
    assert "2 of 4 val images also in the other split (train & val)" in out


def test_json_says_what_failed_and_why(leaky: Path) -> None:
    doc = json.loads(check(leaky, *QUIET, "--json", code=1))
    rules = {r["name"]: r for r in doc["rules"]}
    assert doc["passed"] is False and rules["leakage"]["status"] == "fail" and rules["leakage"]["findings"] == 2
    assert rules["duplicates"]["status"] == "pass" and rules["quality-dark"]["status"] == "off"
    assert doc["duplicate_rule"].startswith("imgindex rule (signature-v3)")


def test_a_baseline_lets_only_new_findings_fail(tmp_path: Path) -> None:
    val = tmp_path / "val"
    shutil.copytree(VAL, val)
    db = tmp_path / "grow.db"
    invoke("scan", "--db", str(db), "-q", f"train={TRAIN}", f"val={val}")
    baseline = tmp_path / "baseline.json"
    check(db, *QUIET, "--write-baseline", str(baseline), code=0)
    assert json.loads(baseline.read_text())["findings"]["leakage"]
    assert "(+2 known from the baseline)" in check(db, *QUIET, "--baseline", str(baseline), code=0)
    with Image.open(TRAIN / "images" / "train2017" / "000000000030.jpg") as im:  # a new leak: a resized copy
        im.resize((im.width // 2, im.height // 2)).save(val / "resized_030.jpg", quality=80)
    invoke("scan", "--db", str(db), "-q", f"train={TRAIN}", f"val={val}")
    out = check(db, *QUIET, "--baseline", str(baseline), code=1)
    assert "FAIL leakage: 1 finding(s) (+2 known from the baseline)" in out
    assert "val:resized_030.jpg" in out


def test_limits_from_pyproject_and_from_a_yaml_file(
    leaky: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.imgindex.check]\nleakage = "off"\nlabel-unnamed-class = "off"\nlabel-without-image = "off"\n'
    )
    assert "All 8 rules hold." in check(leaky, code=0)
    config = tmp_path / "gate.yaml"
    config.write_text(
        "check:\n  leakage: 1\n  label-unnamed-class: off\n  label-without-image: 'off'\n"
    )  # YAML's bare off
    assert "FAIL leakage: 2 finding(s), at most 1" in check(leaky, "--config", str(config), code=1)
    assert "PASS leakage" in check(leaky, "--config", str(config), "--rule", "leakage=2", code=0)


def test_quality_flags_are_rules_off_until_given_a_limit(tmp_path: Path) -> None:
    folder = tmp_path / "train"
    shutil.copytree(TRAIN / "images" / "train2017", folder)
    with Image.open(folder / "000000000025.jpg") as im:
        im.point(lambda v: v // 8).save(folder / "a_night.jpg")
        im.point(lambda v: v // 20).save(folder / "b_darker.jpg")
    db = tmp_path / "q.db"
    invoke("scan", "--db", str(db), "-q", f"train={folder}")
    assert "quality-dark (2)" in check(db, code=0)
    out = check(db, "--rule", "quality-dark=0", code=1)
    assert "FAIL quality-dark" in out and out.index("train:b_darker.jpg") < out.index(
        "train:a_night.jpg"
    )  # worst first, not by name


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--rule", "leaks=0"], "unknown rule 'leaks'"),
        (["--rule", "leakage=some"], "limit 'some' is not a count"),
        (["--rule", "leakage"], "give RULE=LIMIT"),
        (["--baseline", "missing.json"], "cannot read the baseline"),
        (["--config", "missing.toml"], "cannot read the config"),
    ],
)
def test_misuse_is_exit_2_with_one_line(leaky: Path, args: list[str], says: str) -> None:
    out = check(leaky, *args, code=2)
    assert says in out and len(out.strip().splitlines()) == 1


def test_an_output_file_under_a_file_is_exit_2_with_one_line(leaky: Path) -> None:
    for option in ("--junit", "--write-baseline"):
        out = check(leaky, option, str(leaky / "x.xml"), code=2)
        assert f"cannot write {leaky / 'x.xml'}: Not a directory" in out and len(out.strip().splitlines()) == 1


def test_a_name_holding_a_newline_cannot_fake_a_line_of_the_output(tmp_path: Path) -> None:
    val = tmp_path / "val"
    shutil.copytree(VAL, val)
    faked = "x\nPASS leakage: 0 finding(s) red.jpg"
    (val / "000000000036.jpg").rename(val / faked)
    db = tmp_path / "n.db"
    invoke("scan", "--db", str(db), "-q", f"train={TRAIN}", f"val={val}")
    out = check(db, *QUIET, "--examples", "5", code=1)
    assert "x\\nPASS leakage: 0 finding(s) red.jpg" in out
    assert not any(line.startswith("PASS leakage") for line in out.splitlines()), out


def test_exit_codes_in_a_real_process(leaky: Path, tmp_path: Path) -> None:
    assert run_imgindex("check", "--db", str(leaky), *QUIET).returncode == 1
    assert run_imgindex("check", "--db", str(leaky), *QUIET, "--rule", "leakage=off").returncode == 0
    missing = run_imgindex("check", "--db", str(tmp_path / "none.db"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


def test_the_library_gives_the_same_result(leaky: Path) -> None:
    with Index(leaky, readonly=True) as index:
        result = index.check({"label-unnamed-class": "off", "label-without-image": "off"})
    assert not result.passed and [o.rule.name for o in result.failed()] == ["leakage"]
    keys = [f.key for f in next(o for o in result.outcomes if o.rule.name == "leakage").findings]
    assert keys == [
        "train & val: train:images/train2017/000000000036.jpg | val:000000000036.jpg",
        "train & val: train:images/train2017/000000000049.jpg | val:000000000049.jpg",
    ]
