"""User-facing errors.

Every problem with a user's input is raised as :class:`XlingError`: one message naming the
file (and line when known) and the fix. The CLI prints it and exits with code 2.
"""
from __future__ import annotations

from pathlib import Path


class XlingError(Exception):
    """A problem with the user's input or environment that the user can fix."""

    exit_code = 2

    def __init__(self, message: str, *, file: str | Path | None = None, line: int | None = None,
                 fix: str | None = None):
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.fix = fix
        super().__init__(self.render())

    def render(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file + (f":{self.line}" if self.line is not None else "") + ": "
        text = where + self.message
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text
