"""Line diff between two versions of a document (``difflib`` unified diff)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True)
class DiffLine:
    #: " " unchanged, "+" added, "-" removed, "@" hunk header
    op: str
    text: str
    old_no: int | None
    new_no: int | None


def unified(old: str, new: str, old_name: str, new_name: str, context: int = 3) -> str:
    return "\n".join(
        difflib.unified_diff(
            old.splitlines(), new.splitlines(), old_name, new_name, lineterm="", n=context
        )
    )


def diff_lines(old: str, new: str, context: int = 3) -> list[DiffLine]:
    """The hunks of the unified diff with each line's number in the old and new text."""
    a, b = old.splitlines(), new.splitlines()
    out: list[DiffLine] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        first, last = group[0], group[-1]
        out.append(
            DiffLine(
                "@",
                f"@@ -{first[1] + 1},{last[2] - first[1]} +{first[3] + 1},{last[4] - first[3]} @@",
                None,
                None,
            )
        )
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out += [
                    DiffLine(" ", a[i], i + 1, j + 1)
                    for i, j in zip(range(i1, i2), range(j1, j2), strict=True)
                ]
                continue
            out += [DiffLine("-", a[i], i + 1, None) for i in range(i1, i2)]
            out += [DiffLine("+", b[j], None, j + 1) for j in range(j1, j2)]
    return out
