"""The label sets of a family's points, kept apart from their values and worked on once.

What a rule does to a family's labels (which points a filter keeps, which points an
aggregation groups, which points pair in a binary operation, the labels a ``tag`` leaves)
depends on the label sets alone, never on the values. From one minute to the next the same
series come, so the same label sets: a ``Layout`` (a family's label sets, in order) is
interned, and what an operation works out from it is remembered on it (``Layout.derived``).
A later minute with the same series then only moves values: a selection of indexes, a fold
per group, arithmetic over two lists.

``Layouts`` holds the interned layouts of the families built from samples (the roots) and,
through them, everything derived. It is bounded by the points of its roots: past
``POINTS_LIMIT`` it starts over, like ``Memo.answers``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import itemgetter
from typing import TypeVar

Labels = tuple[tuple[str, str], ...]
"""Label names and values, sorted by name."""

Pick = Callable[[Sequence[float]], Sequence[float]]
"""Takes the values at some indexes, in order."""


class Layout:
    """The label sets of a family's points, in order (see the module docstring)."""

    __slots__ = ("derived", "labels")

    def __init__(self, labels: tuple[Labels, ...]) -> None:
        self.labels = labels
        self.derived: dict[object, object] = {}
        """What operations worked out from these labels, by the operation and its arguments."""

    def __len__(self) -> int:
        return len(self.labels)


EMPTY_LAYOUT = Layout(())

_Item = TypeVar("_Item")
_INDEXES: list[int] = []
"""0, 1, 2, ...: one int object per index, shared (see ``numbered``)."""


def numbered(items: Iterable[_Item], size: int) -> Iterator[tuple[int, _Item]]:
    """``enumerate(items)`` for ``size`` items, its indexes taken from one shared table: the
    indexes a layout keeps (a selection, a group) then cost a reference each, not an int."""
    if len(_INDEXES) < size:
        _INDEXES.extend(range(len(_INDEXES), size))
    return zip(_INDEXES, items)


def picker(indexes: Sequence[int]) -> Pick:
    """A function taking the values at ``indexes`` (in C: ``itemgetter``)."""
    if not indexes:
        return lambda values: ()
    if len(indexes) == 1:
        (index,) = indexes
        return lambda values: (values[index],)
    return itemgetter(*indexes)


class Selection:
    """Some points of a layout, in order: their layout, and how to take their values."""

    __slots__ = ("layout", "pick")

    def __init__(self, parent: Layout, indexes: Sequence[int]) -> None:
        whole = len(indexes) == len(parent) and list(indexes) == list(range(len(parent)))
        self.layout = parent if whole else Layout(tuple(parent.labels[i] for i in indexes))
        self.pick: Pick | None = None if whole else picker(indexes)
        """None when every point stays, in order: the values and layout are the parent's."""


class Layouts:
    """Interned layouts of families built from samples (see the module docstring)."""

    POINTS_LIMIT = 600_000
    """Points of the roots kept; past it, everything starts over (bounds memory). A minute
    of 2,000 tables evaluated whole by region has ~420,000, its partitioned passes ~210,000;
    what is derived from them costs about 500 bytes a root point (docs/performance.md)."""

    def __init__(self) -> None:
        self._roots: dict[tuple[Labels, ...], Layout] = {}
        self._joined: dict[tuple[Layout, ...], Layout] = {}
        self._points = 0
        self.quantiles: dict[int, tuple[Labels, dict[float, Labels]]] = {}
        """A series' labels with each quantile, by id(its labels): ``families.quantile_points``."""

    def root(self, labels: tuple[Labels, ...]) -> Layout:
        """The layout of a family built from samples with these label sets."""
        found = self._roots.get(labels)
        if found is None:
            self._make_room(len(labels))
            found = self._roots[labels] = Layout(labels)
        return found

    def joined(self, parts: tuple[Layout, ...]) -> Layout:
        """The layout of some families' points one after another (a union of partitions')."""
        found = self._joined.get(parts)
        if found is None:
            labels = tuple(label for part in parts for label in part.labels)
            self._make_room(len(labels))
            found = self._joined[parts] = Layout(labels)
        return found

    def _make_room(self, points: int) -> None:
        self._points += points
        if self._points > self.POINTS_LIMIT:
            self._roots.clear()
            self._joined.clear()
            self.quantiles.clear()
            self._points = points
