"""Data files of the NLU (YAML gazetteers, rules, eval sets) and their loader."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

DATA_PACKAGE = __name__


def data_dir() -> Path:
    """Directory of the packaged data files (the package is installed, not zipped)."""
    return Path(str(resources.files(DATA_PACKAGE)))


@lru_cache(maxsize=64)
def load_yaml(name: str, directory: Path | None = None) -> Any:
    """Parse ``name`` from ``directory`` (default: the packaged data directory)."""
    path = (directory or data_dir()) / name
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)
