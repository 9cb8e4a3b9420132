"""`imgindex check`: the index held to rules (imgindex.check.rules.RULES), for CI.

Each rule has a limit: a count of findings ("0", "5"), a share ("2%", of what the rule says), or
"off". Limits come from the rules' defaults, then a config file (pyproject.toml's
[tool.imgindex.check], or a YAML file), then the command line. A baseline (the findings of an
earlier check, written by `check --write-baseline`) makes only findings new since then count.
Everything is read from the index, opened read-only: a check after a re-scan costs the re-scan.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils
import yaml

from .rules import RULES, Finding, Rule, load_facts

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

__all__ = ["RULES", "CheckError", "CheckResult", "Config", "Limit", "Outcome", "load_config", "parse_limit", "run"]

BASELINE_FORMAT = "imgindex-check-baseline/1"
LIMIT = re.compile(r"^(?:(\d+)|(\d+(?:\.\d+)?)\s*%|off)$")


class CheckError(ValueError):
    """Misuse: an unknown rule, a limit that is not a count, share or off, a bad config or baseline
    file. The message is one line saying what to give instead."""


@dataclass(frozen=True)
class Limit:
    text: str
    count: int | None = None
    share: float | None = None  # a fraction, 0..1

    @property
    def off(self) -> bool:
        return self.count is None and self.share is None

    def exceeded(self, findings: int, share: float) -> bool:
        if self.count is not None:
            return findings > self.count
        return self.share is not None and share > self.share


def parse_limit(rule: str, text: object) -> Limit:
    if text is False:  # YAML reads a bare `off` (or `no`, `false`) as false
        text = "off"
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise CheckError(
            f"rule '{rule}': a limit is a count (e.g. 0), a share (e.g. '2%') or 'off', not a {type(text).__name__}"
        )
    value = str(text).strip().lower()
    match = LIMIT.match(value)
    if rule not in RULES:
        raise CheckError(f"unknown rule '{rule}': the rules are {', '.join(RULES)}")
    if match is None:
        raise CheckError(f"rule '{rule}': limit '{text}' is not a count (e.g. 0), a share (e.g. 2%) or off")
    if match.group(1) is not None:
        return Limit(value, count=int(match.group(1)))
    if match.group(2) is not None:
        return Limit(value, share=float(match.group(2)) / 100)
    return Limit("off")


def limits(*layers: Mapping[str, object]) -> dict[str, Limit]:
    """Every rule's limit: its default, overridden by each layer in turn."""
    out = {name: parse_limit(name, rule.default) for name, rule in RULES.items()}
    for layer in layers:
        out.update({name: parse_limit(name, value) for name, value in layer.items()})
    return out


@dataclass
class Outcome:
    rule: Rule
    limit: Limit
    findings: list[Finding]  # the ones that count: not in the baseline
    known: int = 0  # findings the baseline holds
    share: float = 0.0
    share_text: str = ""

    @property
    def status(self) -> str:
        if self.limit.off:
            return "off"
        return "fail" if self.limit.exceeded(len(self.findings), self.share) else "pass"


@dataclass
class CheckResult:
    index: str
    verdict_rule: str
    outcomes: list[Outcome] = field(default_factory=list)
    all_findings: dict[str, list[Finding]] = field(default_factory=dict)  # baseline included

    @property
    def passed(self) -> bool:
        return all(o.status != "fail" for o in self.outcomes)

    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "fail"]

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "passed": self.passed,
            "duplicate_rule": self.verdict_rule,
            "rules": [
                {
                    "name": o.rule.name,
                    "checks": o.rule.title,
                    "status": o.status,
                    "limit": o.limit.text,
                    "findings": len(o.findings),
                    "known_from_baseline": o.known,
                    "share": round(o.share, 6),
                    "share_of": o.share_text,
                    "items": [{"key": f.key, "text": f.text} for f in o.findings],
                }
                for o in self.outcomes
            ],
        }

    def baseline(self) -> dict[str, Any]:
        """What --write-baseline writes: every finding's key, per rule (off rules too)."""
        return {
            "format": BASELINE_FORMAT,
            "duplicate_rule": self.verdict_rule,
            "findings": {name: sorted(f.key for f in found) for name, found in self.all_findings.items() if found},
        }


def run(
    db: sqlite_utils.Database, index: str, rule_limits: Mapping[str, Limit], baseline: Mapping[str, set[str]]
) -> CheckResult:
    """Every rule against the index (read-only); findings whose key the baseline holds don't count."""
    facts = load_facts(db)
    result = CheckResult(index, facts.verdict.rule.describe())
    for name, rule in RULES.items():
        found = [f for f in rule.find(facts) if not (f.images and f.images <= facts.ignored)]
        found.sort(key=lambda f: -len(f.images))  # the largest groups first; the finder's order within
        result.all_findings[name] = found
        known = baseline.get(name, set())
        new = [f for f in found if f.key not in known]
        share, share_text = rule.share(new, facts)
        result.outcomes.append(Outcome(rule, rule_limits[name], new, len(found) - len(new), share, share_text))
    return result


def read_baseline(path: Path) -> dict[str, set[str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckError(
            f"cannot read the baseline {path}: {exc}; write one with `imgindex check --write-baseline`"
        ) from None
    if (
        not isinstance(data, dict)
        or data.get("format") != BASELINE_FORMAT
        or not isinstance(data.get("findings"), dict)
    ):
        raise CheckError(f"{path} is not a baseline written by `imgindex check --write-baseline`")
    return {str(rule): {str(k) for k in keys} for rule, keys in data["findings"].items() if isinstance(keys, list)}


@dataclass
class Config:
    limits: dict[str, object] = field(default_factory=dict)
    baseline: Path | None = None  # relative to the config file's folder


def load_config(path: Path | None, cwd: Path) -> Config:
    """Rule limits, and "baseline", from a config file: the one given (.toml: [tool.imgindex.check];
    .yaml/.yml: the mapping, or its "check" key), else ./pyproject.toml's [tool.imgindex.check] when
    it has one; empty without."""
    if path is None:
        default = cwd / "pyproject.toml"
        section = _section(_toml(default), default, required=False) if default.is_file() else {}
        return _config(section, cwd)
    if path.suffix == ".toml":
        return _config(_section(_toml(path), path, required=True), path.parent)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CheckError(f"cannot read the config {path}: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("check"), dict):
        data = data["check"]
    if not isinstance(data, dict):
        raise CheckError(f"{path}: give a mapping of rule: limit, e.g. 'leakage: 0'")
    return _config({str(k): v for k, v in data.items()}, path.parent)


def _config(section: dict[str, object], folder: Path) -> Config:
    baseline = section.pop("baseline", None)
    return Config(section, None if baseline is None else folder / str(baseline))


def _toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CheckError(f"cannot read the config {path}: {exc}") from None


def _section(data: dict[str, Any], path: Path, required: bool) -> dict[str, object]:
    section = data.get("tool", {}).get("imgindex", {}).get("check")
    if section is None and required:
        raise CheckError(f"{path} has no [tool.imgindex.check] table of rule = limit")
    if section is not None and not isinstance(section, dict):
        raise CheckError(f"{path}: [tool.imgindex.check] must be a table of rule = limit")
    return dict(section or {})
