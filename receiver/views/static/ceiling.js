// How much a table or index can take: its ceilings (the inventory's, GET /api/v1/tables) in
// words, and the headroom panel that charts consumption against them over the range.

import { chartGrid, chartSeries } from "./groups.js";
import { element, panelSection } from "./dom.js";
import { formatNumber } from "./format.js";
import { loadSeries, reports } from "./load.js";

// Where a ceiling comes from, as the inventory names it.
export const CEILING_SOURCES = {
  provisioned: "provisioned",
  on_demand_max: "on-demand maximum",
  account_table_max: "account per-table maximum",
};

export const ON_DEMAND_NOTE =
  "An on-demand table can throttle when its traffic more than doubles its previous peak within "
  + "30 minutes; its warm throughput is what it takes at once.";

// The ceiling of an endpoint ("<table>" or "<table>/<index>") from its table's inventory
// entry; a local secondary index shares its table's. Null when the entry has none.
export function ceilingOf(entry, endpoint) {
  if (!entry) return null;
  const ceilings = entry.ceilings ?? [];
  return ceilings.find((ceiling) => ceiling.endpoint === endpoint)
    ?? ceilings.find((ceiling) => ceiling.endpoint === entry.name) ?? null;
}

// One side of a ceiling in words: { value: "40,000 units/s", source: "account per-table maximum" }.
export function ceilingWords(ceiling, side) {
  const value = ceiling?.[side] ?? null;
  // An on-demand table without a maximum of its own, before the account's limits are known.
  if (value === null) return { value: "none known", source: "no maximum set or polled" };
  return {
    value: `${formatNumber(value)} units/s`,
    source: CEILING_SOURCES[ceiling[`${side}_source`]] ?? "source unknown",
  };
}

// The warm throughput in words ("read 12,000 · write 4,000 units/s"), or null when none is known.
export function warmWords(ceiling) {
  const read = ceiling?.warm_read ?? null;
  const write = ceiling?.warm_write ?? null;
  if (read === null && write === null) return null;
  return `read ${formatNumber(read)} · write ${formatNumber(write)} units/s`;
}

// The charts of the panel: each lists [metric suffix, legend label]. A chart shows where one
// of its headroom series (any but consumption) has data; consumption is drawn against it.
const CONSUMED = { read: "consumed_read_capacity_units", write: "consumed_write_capacity_units" };
const HEADROOM_CHARTS = [
  { id: "ceiling-utilization", title: "Share of the ceiling used",
    series: [["read_ceiling_utilization", "read"], ["write_ceiling_utilization", "write"]] },
  { id: "read-ceiling", title: "Read consumed against the ceiling",
    series: [[CONSUMED.read, "consumed"], ["read_ceiling", "ceiling"]] },
  { id: "write-ceiling", title: "Write consumed against the ceiling",
    series: [[CONSUMED.write, "consumed"], ["write_ceiling", "ceiling"]] },
  { id: "warm-utilization", title: "Share of the warm throughput used",
    series: [["read_warm_utilization", "read"], ["write_warm_utilization", "write"]] },
  { id: "read-warm", title: "Read consumed against the warm throughput",
    series: [[CONSUMED.read, "consumed"], ["read_warm_throughput", "warm throughput"]] },
  { id: "write-warm", title: "Write consumed against the warm throughput",
    series: [[CONSUMED.write, "consumed"], ["write_warm_throughput", "warm throughput"]] },
];
const CONSUMPTION = new Set(Object.values(CONSUMED));

// The headroom charts of one table or index, or null when none of its headroom metrics has
// data in the range (the inventory is off, or the table unknown to it).
export async function loadHeadroom(ctx, prefix, service, endpoint) {
  const charts = await Promise.all(HEADROOM_CHARTS.map(async (chart) => {
    const loaded = await Promise.all(chart.series.map(async ([suffix, label]) => ({
      suffix, label, result: await loadSeries(ctx, prefix + suffix, service, endpoint),
    })));
    if (!loaded.some(({ suffix, result }) => !CONSUMPTION.has(suffix) && reports(result))) return null;
    const series = loaded
      .filter(({ result }) => !result.undefinedMetric)
      .map(({ label, result }) => chartSeries(ctx, result, label, false));
    return { id: chart.id, title: chart.title, window: ctx.window, series };
  }));
  const shown = charts.filter((chart) => chart !== null);
  return shown.length === 0 ? null : shown;
}

// `onDemand`: the inventory knows the table is on demand, so the panel says how it throttles.
export function headroomSection(charts, { onDemand }) {
  if (charts === null) return null;
  const parts = [];
  if (onDemand) parts.push(element("p", "panel-note on-demand-note", ON_DEMAND_NOTE));
  parts.push(chartGrid(charts));
  return panelSection("headroom", "Headroom", ...parts);
}
