"""The alarm counters as Prometheus families (served by /metrics)."""

from __future__ import annotations

from receiver.alarms.counters import AlarmCountsSnapshot
from receiver.views.prometheus import PREFIX, Family, Point


def alarm_families(counts: AlarmCountsSnapshot) -> list[Family]:
    return [
        Family(
            PREFIX + "alarms_fired_total", "counter",
            "Alarm firing notifications this replica sent (starts and reminders), by rule.",
            tuple(Point((("rule", rule),), n) for rule, n in counts.fired),
        ),
        Family(
            PREFIX + "alarms_resolved_total", "counter",
            "Alarm resolved notifications this replica sent, by rule.",
            tuple(Point((("rule", rule),), n) for rule, n in counts.resolved),
        ),
        Family(
            PREFIX + "alarm_notifications_total", "counter",
            "Alarm notification deliveries by channel (webhook, slack, sns) and outcome (delivered, "
            "failed: given up after the retries).",
            tuple(Point((("channel", c), ("outcome", o)), n) for c, o, n in counts.notifications),
        ),
    ]
