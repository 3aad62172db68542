"""Which parts of a rule keep one table's samples apart from another's.

A commit touches a few tables of a minute; re-running every rule over the whole minute
for it costs the whole account. So the samples of a minute are split into *partitions*
(one table, delivery stream or metric stream of one account: ``partition_of``) and a rule
is taken apart where its points start to mix partitions:

* a node is **local** when every point it gives comes from one partition's samples and
  still carries that partition's labels (the account and the resource label). Families,
  tag filters, ``filter``, arithmetic between local operands, and aggregations whose
  ``by`` keeps the account and the resource label are local when their operands are;
* the first node above a local one that is not (an aggregation over the account, a
  ``tag`` that rewrites the account or the resource label) makes that local operand a
  **cut**: it is evaluated per partition, and the rest of the rule runs once over the
  union of every partition's cut points.

A rule with no cut is local as a whole: its values for a partition come from that
partition's samples alone. Evaluating a node over the union of its per-partition points is
evaluating it over all the samples: the same points, only in another order, and nothing
here depends on order (sums are exact, means and extremes are symmetric).

The resource label of a namespace comes from ``RESOURCE_LABELS``; samples of any other
namespace form one partition per account, which keeps them together (safe for any rule).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from receiver.model import Sample
from receiver.rules import nodes as n
from receiver.rules.checker import AGGREGATIONS, ARITHMETIC
from receiver.rules.families import family_name

ACCOUNT_LABEL = "cloud_account_id"
"""The label holding a sample's account (``families.sample_labels``)."""

RESOURCE_LABELS: dict[str, str] = {
    "AWS/DynamoDB": "TableName",
    "Receiver/DynamoDBInventory": "TableName",
    "AWS/Firehose": "DeliveryStreamName",
    "AWS/CloudWatch/MetricStreams": "MetricStreamName",
}
"""The dimension naming the resource a namespace's series belong to: what the rule packs'
endpoints are built from, and so the unit a minute is evaluated by."""

Partition = tuple[str, str, str]
"""(account, resource label, its value): the samples evaluated together. Samples of a
namespace with no resource label, or lacking it, have ('', '') there: one partition per
account."""


def partition_of(sample: Sample) -> Partition:
    """The partition of a sample, read as ``families.sample_labels`` labels it (its
    dimensions win over its stream labels, the account over the stream labels)."""
    series = sample.series
    label = resource_label(family_name(series.namespace, series.metric))
    account = series.account
    resource = ""
    for name, value in series.dimensions:
        if name == ACCOUNT_LABEL:
            account = value
        elif name == label:
            resource = value
    if label is not None and not resource and label not in dict(series.dimensions):
        resource = next((value for name, value in sample.labels if name.replace(".", "_") == label), "")
    return (account, label or "", resource)


@lru_cache(maxsize=4096)
def resource_label(family: str) -> str | None:
    """The resource label a family's samples are partitioned by, None for none."""
    labels = resource_labels(family)
    return min(labels) if labels else None


@lru_cache(maxsize=4096)
def resource_labels(family: str) -> frozenset[str]:
    """The resource labels a family's samples may be partitioned by: that of every known
    namespace whose family names could be this one's (names are ambiguous: 'AWS/DynamoDB'
    and 'AWS/DynamoDB/X' share a prefix). A family of no known namespace needs none: its
    samples are partitioned by account alone."""
    found = set()
    for namespace, label in RESOURCE_LABELS.items():
        if family.startswith(family_name(namespace, "")):
            found.add(label)
    return frozenset(found)


@dataclass(frozen=True, slots=True)
class Unit:
    """A part of a rule evaluated per partition: the whole rule when it is local, else a cut."""

    expr: n.Expr
    label: str | None
    """The resource label its points are attributed by: a local point still carries its
    partition's account and resource labels."""


@dataclass(frozen=True, slots=True)
class Split:
    """A rule taken apart (see the module docstring)."""

    local: bool
    """The whole rule is local: its one unit is the rule's expression."""
    units: tuple[Unit, ...]
    """What runs per partition: the expression when ``local``, else the cuts. Empty when
    the rule cannot be taken apart (``whole``)."""

    @property
    def whole(self) -> bool:
        """The rule reads families partitioned by different labels in one local part, so
        no point can be attributed to a partition: it runs over every sample at once."""
        return not self.units


def split(expr: n.Expr) -> Split:
    """Where ``expr`` stops keeping partitions apart."""
    cuts: list[n.Expr] = []
    local = _local(expr, cuts)
    units = []
    for part in [expr] if local else _unique(cuts):
        labels = {resource_label(name) for name in _families(part)}
        if len(labels) != 1:
            return Split(False, ())
        units.append(Unit(part, labels.pop()))
    return Split(local, tuple(units))


def _unique(cuts: list[n.Expr]) -> list[n.Expr]:
    seen: set[int] = set()
    kept = []
    for cut in cuts:
        if id(cut) not in seen:
            seen.add(id(cut))
            kept.append(cut)
    return kept


def _local(expr: n.Expr, cuts: list[n.Expr]) -> bool:
    """Whether ``expr`` is local; the cuts below a node that is not go into ``cuts``."""
    match expr:
        case n.Number() | n.Family():
            return True
        case n.Negate(operand=operand):
            return _local(operand, cuts)
        case n.Binary(left=left, right=right):
            return _both_local(left, right, cuts)
        case n.Call(receiver=receiver, method=method, args=args):
            if method in ARITHMETIC:
                argument = args[0]
                assert not isinstance(argument, (n.String, n.StringList, n.Closure))
                return _both_local(receiver, argument, cuts)
            inner = _local(receiver, cuts)
            if not inner:
                return False
            if _keeps_partitions(receiver, method, args):
                return True
            _cut(receiver, cuts)
            return False
    raise AssertionError(f"not an expression: {expr!r}")


def _both_local(left: n.Expr, right: n.Expr, cuts: list[n.Expr]) -> bool:
    # Points pair by equal label sets, so two local operands pair within a partition.
    left_local = _local(left, cuts)
    right_local = _local(right, cuts)
    if left_local and right_local:
        return True
    for side, local in ((left, left_local), (right, right_local)):
        if local:
            _cut(side, cuts)
    return False


def _cut(expr: n.Expr, cuts: list[n.Expr]) -> None:
    if _families(expr):  # a constant needs no evaluating per partition
        cuts.append(expr)


def _keeps_partitions(receiver: n.Expr, method: str, args: tuple[n.Arg, ...]) -> bool:
    """Whether applying ``method`` to local points keeps them local."""
    if method in AGGREGATIONS:
        by = args[0]
        assert isinstance(by, n.StringList)
        needed = {ACCOUNT_LABEL}.union(*(resource_labels(name) for name in _families(receiver)))
        return needed.issubset(by.items)
    if method == "tag":
        closure = args[0]
        assert isinstance(closure, n.Closure)
        assigned = {s.name for s in closure.body if isinstance(s, n.Assign)}
        rewritten = {ACCOUNT_LABEL}.union(RESOURCE_LABELS.values())
        return assigned.isdisjoint(rewritten)
    # Tag filters and ``filter`` keep points as they are; downsampling, service, instance
    # and endpoint name the result and leave the points alone.
    return True


def _families(expr: n.Expr) -> set[str]:
    """The family names ``expr`` reads."""
    match expr:
        case n.Family(name=name):
            return {name}
        case n.Number():
            return set()
        case n.Negate(operand=operand):
            return _families(operand)
        case n.Binary(left=left, right=right):
            return _families(left) | _families(right)
        case n.Call(receiver=receiver, method=method, args=args):
            found = _families(receiver)
            if method in ARITHMETIC:  # other methods' arguments are names, not families
                argument = args[0]
                assert not isinstance(argument, (n.String, n.StringList, n.Closure))
                found |= _families(argument)
            return found
    return set()
