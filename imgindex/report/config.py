"""Which features to show: every feature with data, or what a DataGradients YAML config lists."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .features import FEATURES, NEEDS_PIXELS


class ConfigError(ValueError):
    """The config file cannot be used; the message says why and what to do."""


@dataclass
class FeatureRequest:
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    explicit: bool = False  # listed in a config: shown even without data


@dataclass
class Section:
    name: str
    features: list[FeatureRequest]


def default_sections() -> list[Section]:
    sections: dict[str, Section] = {}
    for spec in FEATURES.values():
        sections.setdefault(spec.section, Section(spec.section, [])).features.append(FeatureRequest(spec.name))
    return list(sections.values())


def load_config(path: str | Path) -> list[Section]:
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read config {path}: {err}") from err
    if not isinstance(document, dict) or not isinstance(document.get("report_sections"), list):
        raise ConfigError(f"{path}: expected a mapping with a 'report_sections' list, as in DataGradients' configs")
    return [_section(item, path) for item in document["report_sections"]]


def _section(item: Any, path: str | Path) -> Section:
    if not isinstance(item, dict) or "features" not in item:
        raise ConfigError(f"{path}: every entry of report_sections needs 'name' and 'features'")
    return Section(str(item.get("name", "")), [_feature(f, path) for f in item["features"] or []])


def _feature(item: Any, path: str | Path) -> FeatureRequest:
    params: dict[str, Any] = {}
    if isinstance(item, str):
        name = item
    elif isinstance(item, dict) and len(item) == 1:
        name, given = next(iter(item.items()))
        params = dict(given or {})
    else:
        raise ConfigError(f"{path}: a feature is a name or a mapping {{name: {{parameters}}}}, got {item!r}")
    if name not in FEATURES and name not in NEEDS_PIXELS:
        known = ", ".join(FEATURES)
        raise ConfigError(f"{path}: unknown feature {name!r}; known features: {known}")
    return FeatureRequest(str(name), params, explicit=True)
