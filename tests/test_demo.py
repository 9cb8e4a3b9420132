"""The README's demo command, run for real in a copy of the repository."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT


@pytest.mark.skipif(shutil.which("python3") is None, reason="the demo script calls python3")
def test_demo_script_scans_the_sample_and_finds_the_leaks(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    ignore = shutil.ignore_patterns(".venv", ".git", "*.db", "*.db-*", "__pycache__", "*.egg-info", "logs")
    shutil.copytree(ROOT, repo, ignore=ignore)
    proc = subprocess.run(["bash", "scripts/demo.sh"], cwd=repo, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("20 new, 0 changed, 0 unchanged, 0 removed, 0 errors")
    assert "There are 2 duplicates between train and val appearing 2 times in the train image directory" in proc.stdout
    assert (repo / "demo.db").exists()
    assert "Quality flags, the rule applied:" in proc.stdout
    assert "000000000086.jpg" in proc.stdout.split("grayscale: ", 1)[1]  # the black-and-white photo
    assert "FAIL leakage: 2 finding(s)" in proc.stdout and "imgindex check exited 1" in proc.stdout
    assert "We have finished evaluating your dataset!" in proc.stdout
    assert (repo / "logs" / "demo" / "Report.pdf").is_file() and (repo / "logs" / "demo" / "summary.json").is_file()
