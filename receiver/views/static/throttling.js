// Why throttled: the throttle events of each cause (read and write) beside the throttled
// requests of each operation, and every throttled minute (or hour) of the range with the
// cause that dominates it. Shown where a cause or an operation reported throttling. With the
// table inventory, a table page adds the table's ceilings beside the causes and, where
// Contributor Insights reports them, its most throttled keys (which show the panel as well).

import { ceilingWords, warmWords } from "./ceiling.js";
import { element, panelSection, scrolling } from "./dom.js";
import { formatClock, formatMoment, formatNumber } from "./format.js";
import { sortableTable } from "./grid.js";
import { chartGrid, chartSeries } from "./groups.js";
import { OPERATIONS } from "./layout.js";
import { loadSeries, reports } from "./load.js";

// AWS's four throttling reasons, each with what it means and what fixes it.
export const CAUSES = [
  { key: "provisioned", suffix: "provisioned_throughput_throttle_events", label: "provisioned throughput",
    means: "requests beyond the provisioned read or write capacity of the table or index",
    fix: "raise the provisioned capacity or turn on auto scaling" },
  { key: "account_limit", suffix: "account_limit_throttle_events", label: "account limit",
    means: "an on-demand table or index reached the account's per-table throughput quota",
    fix: "raise the account quota (Service Quotas)" },
  { key: "key_range", suffix: "key_range_throughput_throttle_events", label: "key range",
    means: "one partition's throughput limit: a hot partition key",
    fix: "spread the requests over more partition key values" },
  { key: "max_on_demand", suffix: "max_on_demand_throughput_throttle_events", label: "max on-demand",
    means: "the maximum throughput set for the on-demand table or index",
    fix: "raise the table's on-demand maximum" },
];
const DIRECTIONS = ["read", "write"];
const MOST_ROWS = 60;

export async function loadThrottling(ctx, { prefix, service, endpoint }) {
  const load = (suffix) => loadSeries(ctx, prefix + suffix, service, endpoint);
  const [events, operations, requests] = await Promise.all([
    Promise.all(DIRECTIONS.flatMap((direction) => CAUSES.map(async (cause) =>
      ({ direction, cause, result: await load(`${direction}_${cause.suffix}`) })))),
    Promise.all(OPERATIONS.map(async (operation) =>
      ({ operation, result: await load(`${operation.key}_throttled_requests`) }))),
    Promise.all(DIRECTIONS.map((direction) => load(`${direction}_throttled_requests`))),
  ]);
  const shown = (items) => items.filter(({ result }) => reports(result));
  if (shown(events).length === 0 && shown(operations).length === 0) return null;

  // A chart where one of its series reports. The cause charts keep all four causes, so that a
  // cause has the same colour in both; the operations chart only those throttled.
  const chart = (id, title, items, label) => ({
    id, title, window: ctx.window,
    series: items.map((item) => chartSeries(ctx, item.result, label(item), true)),
  });
  const charts = [
    ...DIRECTIONS.map((direction) => chart(
      `${direction}-throttle-causes`, `${direction === "read" ? "Read" : "Write"} throttle events by cause`,
      events.filter((item) => item.direction === direction && !item.result.undefinedMetric),
      (item) => item.cause.label)),
    chart("operation-throttled-requests", "Throttled requests by operation", shown(operations),
      (item) => item.operation.label),
  ].filter((spec) => spec.series.some(reports));
  return { charts, buckets: throttledBuckets(events, operations, requests), stepS: ctx.window.stepS };
}

// Every bucket with throttling: its throttled requests (read + write), the operations
// throttled, the events of each cause (read + write) and the directions they came from.
function throttledBuckets(events, operations, requests) {
  const buckets = new Map();
  const at = (t) => {
    if (!buckets.has(t)) buckets.set(t, { t, requests: null, operations: [], causes: new Map() });
    return buckets.get(t);
  };
  for (const { direction, cause, result } of events) {
    for (const [t, value] of result.points) {
      if (value <= 0) continue;
      const bucket = at(t);
      const counted = bucket.causes.get(cause.key) ?? { total: 0, directions: [] };
      counted.total += value;
      counted.directions.push(direction);
      bucket.causes.set(cause.key, counted);
    }
  }
  for (const { operation, result } of operations) {
    for (const [t, value] of result.points) if (value > 0) at(t).operations.push(`${operation.label} ${formatNumber(value)}`);
  }
  for (const result of requests) {
    for (const [t, value] of result.points) {
      if (value <= 0) continue;
      const bucket = at(t);
      bucket.requests = (bucket.requests ?? 0) + value;
    }
  }
  return [...buckets.values()].sort((a, b) => b.t - a.t);
}

// The cause with the most events in the bucket (all of them on a tie), naming the directions.
function dominant(bucket) {
  const most = Math.max(0, ...[...bucket.causes.values()].map((counted) => counted.total));
  if (most === 0) return { value: null, text: "not reported" };
  const top = CAUSES.filter((cause) => bucket.causes.get(cause.key)?.total === most);
  return {
    value: top.map((cause) => cause.key).join(" "),
    text: top.map((cause) => `${cause.label} (${bucket.causes.get(cause.key).directions.join(" and ")})`).join(" = "),
  };
}

// `inventory` (a table page's): { ceiling, topKeys } from the table inventory, each null when unknown.
export function throttlingSection(loaded, inventory = {}) {
  const { ceiling = null, topKeys = null } = inventory;
  if (loaded === null && topKeys === null) return null;
  const explained = element("ul", "causes");
  explained.append(...CAUSES.map((cause) => {
    const item = element("li");
    item.dataset.cause = cause.key;
    item.append(element("strong", "", capitalized(cause.label)), `: ${cause.means}. Fix: ${cause.fix}.`);
    return item;
  }));
  const parts = [];
  if (ceiling === null) {
    parts.push(explained);
  } else {
    const beside = element("div", "beside");
    beside.append(explained, ceilingBox(ceiling));
    parts.push(beside);
  }
  if (loaded !== null && loaded.charts.length > 0) parts.push(chartGrid(loaded.charts));
  if (topKeys !== null) parts.push(scrolling(topKeyTable(topKeys)));
  if (loaded !== null && loaded.buckets.length > 0) parts.push(scrolling(bucketTable(loaded)));
  return panelSection("why-throttled", "Why throttled", ...parts);
}

// What the table or index can take, to read the causes against.
function ceilingBox(ceiling) {
  const box = element("aside", "ceiling");
  box.setAttribute("aria-label", "Ceiling");
  box.append(element("strong", "", "Ceiling"));
  const list = element("dl", "");
  for (const side of ["read", "write"]) {
    const { value, source } = ceilingWords(ceiling, side);
    const item = element("div", "");
    item.dataset.side = side;
    const shown = element("dd", "", value);
    shown.append(element("span", "detail", source));
    item.append(element("dt", "", capitalized(side)), shown);
    list.append(item);
  }
  const warm = warmWords(ceiling);
  if (warm !== null) {
    const item = element("div", "");
    item.dataset.side = "warm";
    item.append(element("dt", "", "Warm"), element("dd", "", warm));
    list.append(item);
  }
  box.append(list);
  return box;
}

// The table's most throttled keys in Contributor Insights' window, most throttled first.
function topKeyTable({ start, end, keys, rules }) {
  const parts = Math.max(1, ...keys.map((item) => item.key.length));
  const columns = [
    { key: "rank", label: "#", numeric: true },
    { key: "partition", label: "Partition key" },
    ...(parts > 1 ? [{ key: "sort", label: "Sort key" }] : []),
    { key: "throttled", label: "Throttled", note: "requests", numeric: true },
  ];
  const rows = keys.map((item, rank) => ({
    id: JSON.stringify(item.key),
    cells: {
      rank: { value: rank + 1 },
      partition: { value: item.key[0] ?? null },
      sort: { value: item.key[1] ?? null },
      throttled: { value: item.value },
    },
  }));
  const window = sameDay(start, end) ? `${formatMoment(start)}–${formatClock(end)}` : `${formatMoment(start)} – ${formatMoment(end)}`;
  const from = rules.length > 0 ? ` (rules ${rules.join(", ")})` : "";
  const table = sortableTable({
    id: "top-keys", caption: `The most throttled keys, ${window}, from Contributor Insights${from}`, columns, rows,
    initialSort: { key: "rank", descending: false },
  });
  table.dataset.start = String(start);
  table.dataset.end = String(end);
  return table;
}

function sameDay(start, end) {
  return new Date(start * 1000).toDateString() === new Date(end * 1000).toDateString();
}

function bucketTable({ buckets, stepS }) {
  const bucket = stepS >= 3600 ? "hour" : "minute";
  const columns = [
    { key: "time", label: capitalized(bucket) },
    { key: "requests", label: "Throttled", note: "requests, read + write", numeric: true },
    { key: "operations", label: "Operations throttled", note: "requests" },
    ...CAUSES.map((cause) => ({ key: cause.key, label: capitalized(cause.label), note: "events", numeric: true })),
    { key: "dominant", label: "Dominant cause" },
  ];
  const rows = buckets.slice(0, MOST_ROWS).map((item) => {
    const cells = {
      time: { value: item.t, text: formatMoment(item.t) },
      requests: { value: item.requests },
      operations: { value: item.operations.length > 0 ? item.operations.join(" · ") : null },
      dominant: dominant(item),
    };
    for (const cause of CAUSES) cells[cause.key] = { value: item.causes.get(cause.key)?.total ?? null };
    return { id: String(item.t), cells };
  });
  const caption = buckets.length > MOST_ROWS
    ? `The ${MOST_ROWS} newest of ${buckets.length} ${bucket}s with throttling in this range`
    : `Each ${bucket} with throttling in this range and the cause with the most events`;
  return sortableTable({
    id: "throttled-buckets", caption, columns, rows, initialSort: { key: "time", descending: true },
  });
}

function capitalized(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
