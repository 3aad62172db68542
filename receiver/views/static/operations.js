// Every operation on its own: a sortable table of the operations that reported in the range
// (mean latency, p99, throttled requests, system errors), a latency chart for each of them
// beyond the four every page charts, and their system errors side by side. An operation
// without data in the range is left out, never drawn as an empty chart.

import { panelSection, scrolling } from "./dom.js";
import { sortableTable } from "./grid.js";
import { chartGrid, chartSeries, loadGroups } from "./groups.js";
import { latencyChart, OPERATIONS } from "./layout.js";
import { loadSeries, reports, summarize } from "./load.js";

// The numbers of a row: each column one metric of the operation, reduced over the range.
const MEASURES = [
  { key: "latency", label: "Latency", note: "ms, mean", suffix: "successful_request_latency", reduce: "mean" },
  { key: "p99", label: "p99", note: "ms, largest", suffix: "successful_request_latency_p99", reduce: "max" },
  { key: "throttled", label: "Throttled", note: "requests, total", suffix: "throttled_requests", reduce: "sum" },
  { key: "system_errors", label: "System errors", note: "requests, total", suffix: "system_errors", reduce: "sum" },
];

// scope: { prefix, service, endpoint }. `skip`: operations whose latency another panel
// charts (GetRecords in the table page's stream panel). Null when no operation reported.
export async function loadOperations(ctx, { prefix, service, endpoint }, { withPercentiles, skip = [] }) {
  const all = await Promise.all(OPERATIONS.map(async (operation, order) => {
    const results = {};
    await Promise.all(MEASURES.map(async ({ key, suffix }) => {
      results[key] = await loadSeries(ctx, `${prefix}${operation.key}_${suffix}`, service, endpoint);
    }));
    return { operation, order, results };
  }));
  const reported = all.filter(({ results }) => Object.values(results).some(reports));
  if (reported.length === 0) return null;
  // A measure the rules define for no operation (percentiles of the account) has no column.
  const measures = MEASURES.filter(({ key }) => all.some(({ results }) => !results[key].undefinedMetric));

  const latencies = reported.filter(({ operation, results }) =>
    !operation.fixed && !skip.includes(operation.key) && reports(results.latency));
  const [latencyGroup] = await loadGroups(
    ctx, [{ charts: latencies.map(({ operation }) => latencyChart(operation, withPercentiles)) }],
    prefix, service, endpoint,
  );
  const failing = reported.filter(({ results }) => results.system_errors && reports(results.system_errors));
  const errorsChart = {
    id: "operation-system-errors",
    title: "System errors by operation",
    window: ctx.window,
    series: failing.map(({ operation, results }) => chartSeries(ctx, results.system_errors, operation.label, true)),
  };

  const rows = reported.map(({ operation, order, results }) => {
    const cells = {
      // The operation sorts in the order of the list, not by its name.
      operation: { value: order, text: operation.label },
      covers: { value: operation.covers },
    };
    for (const { key, reduce } of measures) {
      cells[key] = { value: summarize([results[key]], reduce), error: results[key].error ?? null };
    }
    return { id: operation.key, cells };
  });
  return {
    measures,
    rows,
    charts: [...latencyGroup.charts, ...(failing.length > 0 ? [errorsChart] : [])],
  };
}

export function operationsSection(loaded) {
  if (loaded === null) return null;
  const columns = [
    { key: "operation", label: "Operation" },
    { key: "covers", label: "CloudWatch operations" },
    ...loaded.measures.map(({ key, label, note }) => ({ key, label, note, numeric: true })),
  ];
  const table = sortableTable({
    id: "operations",
    caption: "Each operation that reported in this range (get and put include their batch forms)",
    columns,
    rows: loaded.rows,
    initialSort: { key: "operation", descending: false },
  });
  const parts = [scrolling(table)];
  if (loaded.charts.length > 0) {
    const charts = chartGrid(loaded.charts);
    charts.classList.add("below");
    parts.push(charts);
  }
  return panelSection("operations", "Every operation", ...parts);
}
