from __future__ import annotations

import ctypes
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from imgindex.cli import cli

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent
# `imgindex check` rules the vendored samples break by themselves (coco8 has no names file, the
# coco128 sample keeps two label files whose images were left out): turned off where a test
# is about something else
SAMPLE_LABEL_GAPS = ["--rule", "label-unnamed-class=off", "--rule", "label-without-image=off"]


def invoke(*args: str, ok: bool = True) -> Result:
    """Run the CLI in-process; by default assert it succeeded."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def run_imgindex(*args: str, cwd: Path | None = None, **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run `python -m imgindex` in a real subprocess; ``env``: variables set on top of this process's."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("IMGINDEX_DB", None)
    env.update(kw.pop("env", {}))
    if "stdout" not in kw and "stderr" not in kw:
        kw["capture_output"] = True
    return subprocess.run([sys.executable, "-m", "imgindex", *args], cwd=cwd, env=env, text=True, **kw)


def sql_rows(db: Path, query: str) -> list[dict[str, Any]]:
    """Rows of `imgindex sql --json` (stdout: a warning on stderr, e.g. out-of-date near pairs, is not part of them)."""
    return json.loads(invoke("sql", "--db", str(db), "--json", query).stdout)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "index.db"


def free_port() -> int:
    """A TCP port nothing listens on now, for a server a test starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 60) -> None:
    """Wait until url answers with anything below a server error; fail the test after timeout s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=5).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{url} did not answer within {timeout} s")
        time.sleep(0.1)


def shifted_crops(folder: Path, n_side: int, step: int, quality: int = 95) -> list[Path]:
    """n_side^2 crops of one coco8 photo, each shifted by a few pixels: distinct dHashes within a
    few bits of each other (a dense cluster of near pairs)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    with Image.open(DATA / "coco8" / "images" / "train" / "000000000009.jpg") as im:
        w, h, margin = im.width, im.height, step * (n_side - 1)
        for left in range(0, margin + 1, step):
            for top in range(0, margin + 1, step):
                path = folder / f"c{left:02d}_{top:02d}.jpg"
                im.crop((left, top, w - margin + left, h - margin + top)).save(path, quality=quality)
                out.append(path)
    return out


def drop_file_read_override() -> None:
    """In a child process run as root: give up the capabilities that let root read any file."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")
