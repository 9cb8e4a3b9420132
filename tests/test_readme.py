"""The README stays true: its command help is current and its demo commands exist."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def test_readme_command_help_is_current() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cogapp", "--check", "README.md"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, f"README.md is out of date, run `cog -r README.md`:\n{proc.stdout}{proc.stderr}"


def test_readme_opens_with_the_two_setup_commands() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()]
    assert commands == ["scripts/demo.sh", "scripts/test.sh"]
    for script in commands:
        assert (ROOT / script).stat().st_mode & 0o111, f"{script} is not executable"
