from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from imgindex.cli import cli

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent


def invoke(*args: str, ok: bool = True) -> Result:
    """Run the CLI in-process; by default assert it succeeded."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def run_imgindex(*args: str, cwd: Path | None = None, **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run `python -m imgindex` in a real subprocess."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("IMGINDEX_DB", None)
    if "stdout" not in kw and "stderr" not in kw:
        kw["capture_output"] = True
    return subprocess.run([sys.executable, "-m", "imgindex", *args], cwd=cwd, env=env, text=True, **kw)


def sql_rows(db: Path, query: str) -> list[dict[str, Any]]:
    """Rows of `imgindex sql --json` (stdout: a warning on stderr, e.g. out-of-date near pairs, is not part of them)."""
    return json.loads(invoke("sql", "--db", str(db), "--json", query).stdout)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "index.db"
