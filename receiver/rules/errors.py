"""Positions in rule files and the one error a broken rule file raises."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Pos:
    """A place in a rule file: 1-based line and column."""

    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.line}:{self.column}"


class RuleError(Exception):
    """A rule file that cannot be used, with where and why in one sentence.

    ``str(error)`` reads ``rules/aws-dynamodb/x.yaml:12:9: <sentence>``.
    """

    def __init__(self, message: str, file: str = "", pos: Pos | None = None) -> None:
        self.message = message
        self.file = file
        self.pos = pos
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file
        if self.pos is not None:
            where = f"{where}:{self.pos}" if where else str(self.pos)
        return f"{where}: {self.message}" if where else self.message

    def located(self, file: str) -> RuleError:
        """The same error naming ``file`` (parsers raise before they know the file)."""
        return RuleError(self.message, file, self.pos)
