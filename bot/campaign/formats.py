"""The account file formats, apart from the importer so that the CLI can name them in its
options without importing the database layer (``bot --help`` stays fast)."""

from __future__ import annotations

from enum import StrEnum


class FileFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"
