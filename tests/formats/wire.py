"""A protobuf wire writer for the decoder tests, and OpenTelemetry records written with it.

The generated classes write a message one way: fields in number order, the shortest
varints, no unknown fields, each singular field once. CloudWatch writes that way too, but
the wire format allows much more, and both decoders must read all of it alike (or refuse it
alike). ``records`` writes what the generated classes never do: fields in any order, unknown
fields of every wire type (groups too), over-long varints, singular fields given twice,
submessages split in two (the parser merges them), fields left out, empty messages, labels
split in two runs, strings that are not UTF-8, huge counts.
"""

from __future__ import annotations

import math
import struct

from hypothesis import strategies as st

from receiver.formats import otel07

from .helpers import END_NS, START_NS

VARINT, I64, LEN, START_GROUP, END_GROUP, I32 = 0, 1, 2, 3, 4, 5


def varint(value: int, padding: int = 0) -> bytes:
    """``value`` as a varint, ``padding`` bytes longer than it needs to be (an over-long
    encoding, valid while it stays within ten bytes)."""
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    if padding:
        out.append(value | 0x80)
        out.extend(b"\x80" * (padding - 1))
        out.append(0)
    else:
        out.append(value)
    return bytes(out)


def key(number: int, wire: int, padding: int = 0) -> bytes:
    return varint(number << 3 | wire, padding)


def length_field(number: int, payload: bytes, padding: int = 0) -> bytes:
    return key(number, LEN) + varint(len(payload), padding) + payload


def varint_field(number: int, value: int, padding: int = 0) -> bytes:
    return key(number, VARINT) + varint(value, padding)


def fixed64_field(number: int, value: int) -> bytes:
    return key(number, I64) + struct.pack("<Q", value)


def double_field(number: int, value: float) -> bytes:
    return key(number, I64) + struct.pack("<d", value)


class Writer:
    """Writes one record's messages, drawing from hypothesis where the wire leaves a choice.

    ``odd`` False writes as the generated classes do (every choice the canonical one), so a
    share of the examples is what CloudWatch sends; ``faulty`` False writes a record both
    decoders take (unless ``odd`` writes something the parser refuses, such as a group).
    """

    def __init__(self, draw: st.DrawFn, fmt: str) -> None:
        self.draw = draw
        self.fmt = fmt
        self.odd = draw(st.booleans())
        self.faulty = draw(st.sampled_from([False, False, True]))

    def maybe(self, weight: int = 4) -> bool:
        """True now and then (about one time in ``weight``) when writing oddly."""
        return self.odd and self.draw(st.integers(1, weight)) == 1

    def fault(self, weight: int = 8) -> bool:
        """True now and then (about one time in ``weight``) when writing a faulty record."""
        return self.faulty and self.draw(st.integers(1, weight)) == 1

    def padding(self) -> int:
        return self.draw(st.integers(1, 3)) if self.maybe(6) else 0

    def text(self, value: str) -> bytes:
        """A string's bytes, now and then not UTF-8 (the parser refuses that in a string field)."""
        data = value.encode()
        return data + b"\xff" if self.fault(60) else data

    def unknown(self, known: set[int]) -> bytes:
        """A field the view does not know, of any wire type."""
        number = self.draw(st.sampled_from([n for n in (4, 5, 9, 12, 15, 16, 100, 2**29 - 1) if n not in known]))
        wire = self.draw(st.sampled_from([VARINT, I64, LEN, I32, START_GROUP]))
        if wire == VARINT:
            value = self.draw(st.sampled_from([0, 1, 300, 2**63, 2**64 - 1]))
            if self.fault(20):
                return varint_field(number, 2**64 - 1, 1)  # eleven bytes: not a varint
            return varint_field(number, value, self.padding() if value < 2**56 else 0)
        if wire == I64:
            return key(number, I64) + bytes(8)
        if wire == I32:
            return key(number, I32) + bytes(4)
        if wire == LEN:
            return length_field(number, self.draw(st.binary(max_size=6)), self.padding())
        return key(number, START_GROUP) + varint_field(1, 7) + key(number, END_GROUP)

    def message(self, fields: list[bytes], known: set[int]) -> bytes:
        """Fields joined: when writing oddly, now and then shuffled, and unknown fields mixed in."""
        fields = list(fields)
        if self.maybe():
            fields = list(self.draw(st.permutations(fields)))
        for _ in range(self.draw(st.integers(0, 2)) if self.maybe() else 0):
            fields.insert(self.draw(st.integers(0, len(fields))), self.unknown(known))
        return b"".join(fields)

    def any_value(self, text: str) -> bytes:
        return self.message([length_field(1, self.text(text))], {1, 2, 3, 4, 5, 6, 7})

    def key_value(self, name: str, value: bytes) -> bytes:
        return self.message([length_field(1, self.text(name)), length_field(2, value)], {1, 2})

    def resource(self) -> bytes:
        attributes = [
            ("cloud.provider", "aws"),
            ("cloud.account.id", self.draw(st.sampled_from(["123456789012", "210987654321"]))),
            ("cloud.region", self.draw(st.sampled_from(["us-east-1", "eu-west-1"]))),
        ]
        fields = [length_field(1, self.key_value(name, self.any_value(value))) for name, value in attributes]
        if self.maybe():
            fields.append(length_field(1, self.key_value("team", self.message([varint_field(3, 42)], {3}))))
        if self.maybe():
            fields.append(varint_field(2, 1))  # dropped_attributes_count
        if self.fault(12):
            fields.pop(self.draw(st.integers(0, len(fields) - 1)))
        return self.message(fields, {1, 2})

    def labels(self, metric: str) -> list[bytes]:
        """A datapoint's label fields: 0.7 StringKeyValues, or 1.x KeyValues with Dimensions."""
        table = self.draw(st.sampled_from(["T", "U"]))
        if self.fault(20):
            metric = "ThrottledRequests"  # at odds with a metric named for CloudWatch
        if self.fmt == otel07.NAME:
            pairs = [("Namespace", "AWS/DynamoDB"), ("MetricName", metric), ("TableName", table)]
            if self.fault(20):
                pairs.append(("TableName", "again"))
            number = 1
            fields = [
                length_field(
                    number, self.message([length_field(1, self.text(k)), length_field(2, self.text(v))], {1, 2})
                )
                for k, v in pairs
            ]
        else:
            dimensions = [length_field(1, self.key_value("TableName", self.any_value(table)))]
            listed = self.message(dimensions, {1})
            fields = [
                length_field(7, self.key_value("Namespace", self.any_value("AWS/DynamoDB"))),
                length_field(7, self.key_value("MetricName", self.any_value(metric))),
                length_field(7, self.key_value("Dimensions", self.message([length_field(6, listed)], {1, 6}))),
            ]
            if self.maybe():
                fields.append(length_field(7, self.key_value("team", self.any_value("blue"))))
        if self.fault(20):
            fields.pop(self.draw(st.integers(0, len(fields) - 1)))
        return fields

    def quantile(self, quantile: float, value: float) -> bytes:
        # As the generated classes write: a field whose bits are all zero is left out
        # (when writing oddly, now and then written all the same).
        fields = []
        if struct.pack("<d", quantile) != bytes(8) or self.maybe(2):
            fields.append(double_field(1, quantile))
        if struct.pack("<d", value) != bytes(8) or self.maybe(2):
            fields.append(double_field(2, value))
        if self.maybe(10):
            fields.append(double_field(1, quantile))  # given twice: the last counts
        return self.message(fields, {1, 2})

    def value(self) -> float:
        if self.fault(20):
            return self.draw(st.sampled_from([math.nan, math.inf, -math.inf]))
        return self.draw(st.sampled_from([0.0, -0.0, 1.5, 3.0, 1e300, -2.5]))

    def point(self, metric: str) -> bytes:
        minute = self.draw(st.sampled_from([0, 1, 0, -(10**9) if self.fault(10) else 0]))
        start = START_NS + minute * 60_000_000_000
        end = start if self.fault(20) else END_NS + minute * 60_000_000_000
        quantiles = [(0.0, self.value()), (1.0, self.value())]
        quantiles[1:1] = [(q, self.value()) for q in self.draw(st.sampled_from([(), (0.5,), (0.9, 0.99)]))]
        if self.fault(20):
            quantiles.pop(self.draw(st.integers(0, len(quantiles) - 1)))
        if self.maybe():
            quantiles = list(self.draw(st.permutations(quantiles)))
        if self.maybe(10):
            quantiles.append((0.0, 2.0))  # the minimum twice: the last counts
        labels = self.labels(metric)
        values_fields = [
            fixed64_field(2, max(start, 0)),
            fixed64_field(3, max(end, 0)),
            fixed64_field(4, self.draw(st.sampled_from([0, 2, 2**53 + 1, 2**64 - 1]))),
            double_field(5, self.value()),
            *(length_field(6, self.quantile(q, v)) for q, v in quantiles),
        ]
        if self.maybe(8):
            values_fields.append(fixed64_field(4, 7))  # count given twice: the last counts
        if self.fmt != otel07.NAME and self.maybe(8):
            values_fields.append(varint_field(8, 1))  # 1.x flags
        if self.maybe(6):
            values_fields[2:4] = [field for field in values_fields[2:4] if self.draw(st.booleans())]  # zeros left out
        fields = labels + values_fields
        if self.maybe(8) and len(labels) > 1:
            fields = labels[:1] + values_fields[:1] + labels[1:] + values_fields[1:]  # labels in two runs
        return self.message(fields, {1, 2, 3, 4, 5, 6, 7, 8})

    def metric(self) -> bytes:
        metric = self.draw(st.sampled_from(["ConsumedReadCapacityUnits", "SuccessfulRequestLatency"]))
        points = [length_field(1, self.point(metric)) for _ in range(self.draw(st.integers(1, 3)))]
        if self.fault(20):
            points = []
        summaries = [self.message(points, {1})]
        if self.maybe(8) and len(points) > 1:
            summaries = [self.message(points[:1], {1}), self.message(points[1:], {1})]  # merged by the parser
        name = self.draw(st.sampled_from(["", f"amazonaws.com/AWS/DynamoDB/{metric}", "other.example/x", "m"]))
        fields = [
            length_field(1, self.text(name)),
            length_field(3, self.text(self.draw(st.sampled_from(["{Count}", "ms", "", "By"])))),
        ]
        fields += [length_field(11, summary, self.padding()) for summary in summaries]
        if self.maybe(8):
            fields.append(length_field(1, self.text(name)))  # the name given twice
        if self.maybe(8):
            fields.append(length_field(2, b"a description"))
        return self.message(fields, {1, 2, 3, 11})

    def request(self) -> bytes:
        resources = []
        for _ in range(self.draw(st.integers(1, 2))):
            scopes = []
            for _ in range(self.draw(st.integers(1, 2))):
                metrics = [length_field(2, self.metric()) for _ in range(self.draw(st.integers(1, 2)))]
                if self.maybe():
                    metrics.insert(0, length_field(1, self.message([length_field(1, b"scope")], {1})))
                scopes.append(length_field(2, self.message(metrics, {1, 2})))
            fields = [length_field(1, self.resource()), *scopes]
            if self.maybe(10):
                fields.append(length_field(1, self.resource()))  # two resources: merged by the parser
            if self.maybe(8):
                fields.append(length_field(3, b"https://opentelemetry.io/schemas/1.0.0"))
            resources.append(length_field(1, self.message(fields, {1, 2, 3})))
        return self.message(resources, {1})


@st.composite
def records(draw: st.DrawFn, fmt: str) -> bytes:
    """A delimited record of one to three messages, written as described above."""
    writer = Writer(draw, fmt)
    frames = [writer.request() for _ in range(draw(st.integers(1, 3)))]
    return b"".join(varint(len(frame), writer.padding()) + frame for frame in frames)
