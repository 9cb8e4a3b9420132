"""Class names of YOLO-style datasets: data.yaml / dataset.yaml (Ultralytics, Roboflow) or classes.txt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .base import read_text

YAML_NAMES = ("data.yaml", "dataset.yaml", "data.yml", "dataset.yml")
TEXT_NAMES = ("classes.txt", "obj.names")
PARENT_LEVELS = 4  # how far above the split folder a data.yaml is looked for


def find_names_file(folders: list[Path], levels: int = PARENT_LEVELS) -> Path | None:
    """The first data.yaml/dataset.yaml holding `names`, looking in each folder and up to `levels`
    parents; then classes.txt / obj.names in the folders themselves."""
    for folder in folders:
        for candidate in [folder, *list(folder.parents)[:levels]]:
            for name in YAML_NAMES:
                path = candidate / name
                if path.is_file() and load_names(path) is not None:
                    return path
    for folder in folders:
        for name in TEXT_NAMES:
            if (folder / name).is_file():
                return folder / name
    return None


def load_names(path: Path) -> dict[int, str] | None:
    """{class id: name} from a names file; None when it has none or cannot be read."""
    text, _ = read_text(path)
    if text is None:
        return None
    if path.name in TEXT_NAMES:
        return {i: line.strip() for i, line in enumerate(text.splitlines()) if line.strip()}
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return names_from_mapping(data.get("names") if isinstance(data, dict) else None)


def names_from_mapping(names: Any) -> dict[int, str] | None:
    """Ultralytics accepts names as a list or as a {id: name} mapping."""
    if isinstance(names, list):
        return {i: str(n) for i, n in enumerate(names)}
    if isinstance(names, dict):
        out: dict[int, str] = {}
        for key, value in names.items():
            try:
                out[int(key)] = str(value)
            except (TypeError, ValueError):
                continue
        return out
    return None
