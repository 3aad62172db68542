"""Expression text that remembers where each character came from.

SkyWalking composes a rule's expression by pasting text: ``expPrefix`` and ``expSuffix``
around ``exp``, with parentheses and dots of its own. We paste the same way, so every
character keeps its file position and an error points into the YAML file, not into the
pasted string.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from receiver.rules.errors import Pos


@dataclass(frozen=True, slots=True)
class Source:
    """Text plus, per character, its position in the rule file (None: inserted by us)."""

    text: str
    positions: tuple[Pos | None, ...]

    @staticmethod
    def synthetic(text: str) -> Source:
        """Text the loader adds (parentheses, dots): it has no place in the file."""
        return Source(text, (None,) * len(text))

    @staticmethod
    def at(text: str, start: Pos = Pos(1, 1)) -> Source:
        """Text laid out from ``start`` as written (a test string, a whole file)."""
        positions: list[Pos | None] = []
        line, column = start.line, start.column
        for char in text:
            positions.append(Pos(line, column))
            if char == "\n":
                line, column = line + 1, 1
            else:
                column += 1
        return Source(text, tuple(positions))

    def __add__(self, other: Source) -> Source:
        return Source(self.text + other.text, self.positions + other.positions)

    def __getitem__(self, index: slice) -> Source:
        return Source(self.text[index], self.positions[index])

    def find(self, sub: str) -> int:
        return self.text.find(sub)

    def pos(self, offset: int) -> Pos:
        """Where ``offset`` is in the file: the nearest real character, before or after."""
        if not self.positions:
            return Pos(1, 1)
        offset = max(0, min(offset, len(self.positions) - 1))
        for index in range(offset, -1, -1):
            if (found := self.positions[index]) is not None:
                return found
        for index in range(offset + 1, len(self.positions)):
            if (found := self.positions[index]) is not None:
                return found
        return Pos(1, 1)


class FileText:
    """A rule file's text, to turn absolute character indexes into line and column."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._line_starts = [0] + [i + 1 for i, char in enumerate(text) if char == "\n"]

    def pos(self, index: int) -> Pos:
        line = bisect_right(self._line_starts, index)
        return Pos(line, index - self._line_starts[line - 1] + 1)

    def scalar(self, value: str, start: int, end: int, quoted: bool = False) -> Source:
        """``value`` (a YAML scalar's content) with positions, aligned to its raw text.

        The raw text may carry quotes, escapes, block indicators, indentation and folded
        line breaks; the value's characters still appear in it in order, so a greedy walk
        finds each one (whitespace matches any whitespace, for folding).
        """
        raw = self.text[start:end]
        positions: list[Pos | None] = []
        cursor = 1 if quoted else 0  # past the opening quote
        for char in value:
            found = -1
            for index in range(cursor, len(raw)):
                if raw[index] == char or (char.isspace() and raw[index].isspace()):
                    found = index
                    break
            if found < 0:  # an escape we cannot follow: keep the last known place
                positions.append(positions[-1] if positions else self.pos(start))
                continue
            positions.append(self.pos(start + found))
            cursor = found + 1
        return Source(value, tuple(positions))
