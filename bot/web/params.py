"""The integer types of request parameters: ids, version numbers and page numbers, bounded
to what the database can hold, so that an out-of-range value is refused as invalid input
(422) before it reaches a query, never a database overflow (500).

Usable anywhere FastAPI reads a value: path, query, form field or body model field
(``call_id: DbId``, ``page: PageNo = 1``, ``base: VersionNo | None = Form(None)``).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

#: Every id and version column is an ``INTEGER``: 32 bits in PostgreSQL (SQLite's 64 bits
#: are wider), so larger values can never name a row, and a query with one fails.
DB_INT_MAX = 2**31 - 1

#: A row id (primary key).
DbId = Annotated[int, Field(ge=1, le=DB_INT_MAX)]
#: A document's version number (0: the packaged file).
VersionNo = Annotated[int, Field(ge=0, le=DB_INT_MAX)]
#: A position in a stored sequence (a turn's index in its call).
Index = Annotated[int, Field(ge=0, le=DB_INT_MAX)]
#: A 1-based page of a list. The bound keeps the row offset (page x ``web.page_size``,
#: at most 500) well inside the 64-bit OFFSET of both databases.
PageNo = Annotated[int, Field(ge=1, le=DB_INT_MAX, description="1-based page number")]
