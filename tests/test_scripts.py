"""Every benchmark and tool in scripts/ still runs against the package as it is now: its --help
(which imports everything it uses) exits 0 and describes it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

SCRIPTS = sorted(p for p in (ROOT / "scripts").glob("*.py") if p.name != "vendor_label_fixtures.py")


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_the_script_imports_and_explains_itself(script: Path) -> None:
    result = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout
