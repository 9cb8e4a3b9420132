"""`imgindex export`: a leak-free, de-duplicated dataset definition, written without touching the
original files. The decisions (policy.py) read the stored verdict; the exporters (formats.py,
EXPORTERS) write them in the format the trainer reads, plus the removal list with a reason for
every file left out. The folder appears whole: it is written beside, then renamed into place."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from ..near import verdict as verdicts
from .formats import EXPORTERS, Exporter, ExportError, Target, removal_list
from .policy import KEEP_POLICIES, LEAK_POLICIES, Decision, Removal, decide, per_split

STAYS = {
    "largest": "a labelled copy stays first, then the largest",
    "fewest-problems": "a labelled copy stays first, then the one with fewest label problems",
}

__all__ = ["EXPORTERS", "KEEP_POLICIES", "LEAK_POLICIES", "ExportError", "ExportResult", "export"]


@dataclass
class ExportResult:
    decision: Decision
    out: Path | None  # None for a dry run
    format: str
    leaks: str

    def lines(self) -> list[str]:
        train = self.decision.train_split or "none"
        head = f"Leaks go to: {self.leaks} (training split: {train}); within a split {STAYS[self.decision.keep]}."
        lines = [head]
        for split, (kept, removed) in per_split(self.decision).items():
            lines.append(f"{split}: {kept} kept, {removed} removed")
        reasons: dict[str, int] = {}
        for r in self.decision.removed:
            reasons[r.kind] = reasons.get(r.kind, 0) + 1
        if reasons:
            lines.append("Removed: " + ", ".join(f"{n} {k}" for k, n in sorted(reasons.items())))
        where = f"Written: {self.out} ({self.format}; removed.csv and removed.json list every file left out)"
        lines.append(where if self.out else "Dry run: nothing written.")
        return lines

    def as_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "leaks": self.leaks,
            "train_split": self.decision.train_split,
            "keep": self.decision.keep,
            "splits": {s: {"kept": k, "removed": r} for s, (k, r) in per_split(self.decision).items()},
            "removed": [
                {"split": r.image.split, "path": r.image.path, "reason": r.reason} for r in self.decision.removed
            ],
            "out": str(self.out) if self.out else None,
        }


def export(
    db: sqlite_utils.Database,
    out: Path,
    fmt: str = "yolo",
    leaks: str = "train",
    train_split: str | None = None,
    dry_run: bool = False,
    keep: str = "largest",
) -> ExportResult:
    """Decide, then (unless dry_run) write the export into out, a new or empty folder."""
    if fmt not in EXPORTERS:
        raise ExportError(f"unknown format {fmt!r}: the formats are {', '.join(EXPORTERS)}")
    if leaks not in LEAK_POLICIES:
        raise ExportError(f"unknown leak policy {leaks!r}: give one of {', '.join(LEAK_POLICIES)}")
    if keep not in KEEP_POLICIES:
        raise ExportError(f"unknown keep policy {keep!r}: give one of {', '.join(KEEP_POLICIES)}")
    decision = decide(db, leaks, train_split, keep)
    decision.removed += unnamable(decision, EXPORTERS[fmt])
    if train_split is not None and train_split not in decision.splits():
        raise ExportError(f"no split named {train_split!r}: the splits are {', '.join(decision.splits())}")
    result = ExportResult(decision, None, fmt, leaks)
    if dry_run:
        return result
    final = out.absolute()
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        raise ExportError(f"{out} exists and is not an empty folder: give a new folder to export into")
    part = final.with_name(f".{final.name}.part-{os.getpid()}")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    try:
        target = Target(db, decision, part, final)
        EXPORTERS[fmt].write(target)
        removal_list(target)
        (part / "export.json").write_text(json.dumps(_record(db, result), indent=1) + "\n", encoding="utf-8")
        if final.exists():
            final.rmdir()
        os.replace(part, final)
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)
        raise
    result.out = final
    return result


def unnamable(decision: Decision, exporter: Exporter) -> list[Removal]:
    """The kept images the format's files cannot name, left out with the reason."""
    out = []
    for split in decision.splits():
        for image in decision.kept(split):
            why = exporter.cannot_name(image)
            if why:
                out.append(Removal(image, "unnamable", f"not in the {exporter.name} export: {why}"))
    return out


def _record(db: sqlite_utils.Database, result: ExportResult) -> dict[str, Any]:
    """What the export applied: the duplicate rule, the policy, the counts."""
    record = result.as_json()
    record.pop("removed")
    record.pop("out")
    record["duplicate_rule"] = verdicts.load(db).rule.describe()
    return record
