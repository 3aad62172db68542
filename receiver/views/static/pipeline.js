// The Pipeline page (#/pipeline): how each account's metric stream and Firehose stream deliver
// to the receiver, from the pipeline pack (rules/aws-pipeline, layer AWS_METRIC_STREAM), what
// the stream costs, and which minutes the receiver holds complete (GET /api/v1/pipeline).
// A Firehose stream is the entity "firehose:<name>", a metric stream "metric-stream:<name>", of
// the service "aws-metric-stream::<account>".

import { fetchEntities, fetchPipeline } from "./api.js";
import { drawCharts } from "./chart.js";
import { element, panelSection, scrolling } from "./dom.js";
import { formatClock, formatNumber, NO_VALUE } from "./format.js";
import { sortableTable } from "./grid.js";
import { groupSections, loadGroups } from "./groups.js";
import { loadSeries } from "./load.js";

export const PIPELINE_LAYER = "AWS_METRIC_STREAM";
const SERVICE_PREFIX = "aws-metric-stream::";
const PREFIX = "aws_metric_stream_endpoint_";
const FIREHOSE = "firehose:";
const METRIC_STREAM = "metric-stream:";
// How many of each region's latest minutes the completeness table lists, from the last hour
// (the API answers a day at most; the table needs only its end, whatever the page's range).
export const LAST_MINUTES = 10;
const COMPLETENESS_S = 3600;
export const MINUTES_A_DAY = 1440;
export const MINUTES_IN_30_DAYS = 30 * MINUTES_A_DAY;
export const NO_PIPELINE_MESSAGE =
  "no pipeline metrics — the metric stream must include the namespaces AWS/Firehose and AWS/CloudWatch/MetricStreams";

// "aws-metric-stream::123456789012" → "123456789012".
export function pipelineAccount(service) {
  return service.startsWith(SERVICE_PREFIX) ? service.slice(SERVICE_PREFIX.length) : service;
}

const streamName = (entity) => entity.slice(entity.indexOf(":") + 1);

// The charts of one account, a series for each of its streams ([metric suffix, label, entity]).
function pipelineGroups(endpoints) {
  const firehoses = endpoints.filter((name) => name.startsWith(FIREHOSE)).sort();
  const streams = endpoints.filter((name) => name.startsWith(METRIC_STREAM)).sort();
  const each = (entities, suffix, what) =>
    entities.map((entity) => [suffix, what ? `${streamName(entity)}, ${what}` : streamName(entity), entity]);
  return [
    { id: "delivery", title: "Delivery to the receiver", charts: [
      { id: "delivery-success", title: "Delivery requests that succeeded",
        series: each(firehoses, "delivery_success") },
      { id: "data-freshness", title: "Age of the oldest record not yet delivered",
        series: each(firehoses, "delivery_data_freshness") },
    ] },
    { id: "volume", title: "Records and bytes", charts: [
      { id: "records", title: "Records into Firehose and delivered", counts: true,
        series: [...each(firehoses, "incoming_records", "in"), ...each(firehoses, "delivery_records", "delivered")] },
      { id: "bytes", title: "Bytes into Firehose and delivered", counts: true,
        series: [...each(firehoses, "incoming_bytes", "in"), ...each(firehoses, "delivery_bytes", "delivered")] },
      { id: "backup", title: "Records written to the S3 backup (not taken by the receiver)", counts: true,
        series: each(firehoses, "backup_records") },
    ] },
    { id: "metric-stream", title: "Metric stream", charts: [
      { id: "metric-updates", title: "Metric updates", counts: true,
        series: [...each(streams, "metric_updates", "sent"), ...each(streams, "total_metric_updates", "billed")] },
      { id: "publish-errors", title: "Updates the stream could not put into Firehose",
        series: each(streams, "publish_error_rate") },
      { id: "throttled", title: "Records Firehose throttled", counts: true,
        series: each(firehoses, "throttled_records") },
    ] },
  ];
}

// The stream's billed updates over the range: TotalMetricUpdate where it reports, else MetricUpdate.
async function loadUpdates(ctx, service, endpoint) {
  const prefix = endpoint === null ? "aws_metric_stream_" : PREFIX;
  const [total, sent] = await Promise.all([
    loadSeries(ctx, `${prefix}total_metric_updates`, service, endpoint ?? undefined),
    loadSeries(ctx, `${prefix}metric_updates`, service, endpoint ?? undefined),
  ]);
  return total.points.length > 0 || total.error ? total : sent;
}

// What a stream costs at `price` dollars per 1,000 updates: its updates over the range, their
// mean per minute (over the buckets that have a value; an hour's bucket is 60 minutes) and
// that rate's cost a minute, a day and 30 days. Null where nothing reported or no price is known.
export function costOf(points, stepS, price) {
  if (points.length === 0) return { updates: null, perMinute: null, cost: null };
  const updates = points.reduce((total, [, value]) => total + value, 0);
  const perMinute = updates / (points.length * (stepS / 60));
  const cost = price === null ? null : {
    minute: (perMinute * price) / 1000,
    day: (perMinute * MINUTES_A_DAY * price) / 1000,
    month: (perMinute * MINUTES_IN_30_DAYS * price) / 1000,
  };
  return { updates, perMinute, cost };
}

// Dollars: cents for a dollar or more, three significant digits below.
export function formatDollars(value) {
  if (value === null || !Number.isFinite(value)) return NO_VALUE;
  const digits = Math.abs(value) >= 1
    ? { minimumFractionDigits: 2, maximumFractionDigits: 2 }
    : { maximumSignificantDigits: 3 };
  return `$${value.toLocaleString("en-US", digits)}`;
}

async function loadCost(ctx, service, endpoints, price) {
  const streams = endpoints.filter((name) => name.startsWith(METRIC_STREAM)).sort();
  // Each stream, then the account's (every stream) when it has more than one.
  const entities = streams.length > 1 ? [...streams, null] : streams;
  return Promise.all(entities.map(async (endpoint) => {
    const result = await loadUpdates(ctx, service, endpoint);
    return { endpoint, metric: result.metric, error: result.error ?? null,
      ...costOf(result.points, ctx.window.stepS, price) };
  }));
}

// The completeness API's minutes of one account: each region's latest LAST_MINUTES, newest first.
function latestMinutes(minutes, account) {
  const byRegion = new Map();
  for (const minute of minutes.filter((entry) => entry.account === account)) {
    if (!byRegion.has(minute.region)) byRegion.set(minute.region, []);
    byRegion.get(minute.region).push(minute);
  }
  return [...byRegion.keys()].sort().flatMap((region) =>
    byRegion.get(region).sort((a, b) => b.minute - a.minute).slice(0, LAST_MINUTES));
}

export const pipelineView = {
  title: () => "Pipeline",

  async load(ctx) {
    const [services, pipeline] = await Promise.all([
      fetchEntities(ctx.signal).then((all) => all.filter((service) => service.layer === PIPELINE_LAYER)),
      fetchPipeline({ start: ctx.window.end - COMPLETENESS_S, end: ctx.window.end }, ctx.signal).catch((error) => {
        if (error.name === "AbortError") throw error;
        ctx.errors.push(error.message);
        return { error: error.message };
      }),
    ]);
    const price = pipeline.metric_update_price_per_1000 ?? null;
    const minutes = pipeline.minutes ?? [];
    const accounts = new Map(services.map((service) => [pipelineAccount(service.name), service]));
    for (const minute of minutes) if (!accounts.has(minute.account)) accounts.set(minute.account, null);
    const loaded = await Promise.all([...accounts.keys()].sort().map(async (account) => {
      const service = accounts.get(account);
      if (service === null) return { account, service: null, minutes: latestMinutes(minutes, account) };
      const [groups, cost] = await Promise.all([
        loadGroups(ctx, pipelineGroups(service.endpoints), PREFIX, service.name),
        loadCost(ctx, service.name, service.endpoints, price),
      ]);
      return { account, service, groups, cost, minutes: latestMinutes(minutes, account) };
    }));
    return { accounts: loaded, price, settle: pipeline.settle_seconds ?? null, failed: pipeline.error ?? null };
  },

  draw(main, { accounts, price, settle, failed }, ctx) {
    main.append(element("h1", "", "Pipeline"));
    if (accounts.length === 0) {
      const note = element("p", "empty", NO_PIPELINE_MESSAGE);
      note.dataset.empty = "pipeline";
      main.append(note);
      return;
    }
    for (const entry of accounts) main.append(accountSection(entry, { price, settle, failed }, ctx));
    drawCharts(main);
  },
};

function accountSection({ account, service, groups, cost, minutes }, api, ctx) {
  const section = element("section", "pipeline-account");
  section.dataset.account = account;
  section.append(element("h2", "account-heading", `Account ${account}`));
  if (service === null) {
    const note = element("p", "empty", NO_PIPELINE_MESSAGE);
    note.dataset.empty = "pipeline";
    section.append(note);
  } else {
    section.append(...groupSections(groups), costSection(account, cost, api, ctx));
  }
  section.append(completenessSection(account, minutes, api));
  return section;
}

function costSection(account, rows, { price, failed }, ctx) {
  if (rows.length === 0) {
    const none = element("p", "empty", "No metric stream of this account reports its updates: nothing to estimate.");
    none.dataset.empty = "cost";
    return panelSection("cost", "Estimated cost", none);
  }
  const unit = ctx.window.stepS >= 3600 ? "hour" : "minute";
  const columns = [
    { key: "stream", label: "Metric stream" },
    { key: "updates", label: "Billed updates", note: "in this range", numeric: true },
    { key: "per_minute", label: "Updates a minute", note: `mean over the ${unit}s reported`, numeric: true },
    { key: "minute", label: "Cost a minute", numeric: true },
    { key: "day", label: "Cost a day", note: "at that rate", numeric: true },
    { key: "month", label: "Cost in 30 days", note: "at that rate", numeric: true },
  ];
  const money = (value) => ({ value, text: formatDollars(value) });
  const table = sortableTable({
    id: `cost-${account}`,
    caption: "What the metric stream costs: billed metric updates (TotalMetricUpdate, else MetricUpdate) × the price ÷ 1,000",
    columns,
    rows: rows.map((row) => ({
      id: row.endpoint ?? "all",
      cells: {
        stream: { value: row.endpoint === null ? "" : streamName(row.endpoint),
          text: row.endpoint === null ? "all streams" : streamName(row.endpoint) },
        updates: { value: row.updates, error: row.error },
        per_minute: { value: row.perMinute, error: row.error },
        minute: money(row.cost?.minute ?? null),
        day: money(row.cost?.day ?? null),
        month: money(row.cost?.month ?? null),
      },
    })),
    initialSort: { key: "stream", descending: false },
  });
  const said = price === null
    ? `The price is not known (${failed ?? "GET /api/v1/pipeline gave none"}): no cost is shown.`
    : `At ${formatDollars(price)} per 1,000 metric updates (the receiver's setting; AWS's price depends on the region).`;
  const note = element("p", "panel-note", said);
  note.dataset.price = price === null ? "" : String(price);
  return panelSection("cost", "Estimated cost", note, scrolling(table));
}

const BY = { all_arrived: "all arrived", settled: "settle time" };

function completenessSection(account, minutes, { settle, failed }) {
  const parts = [];
  if (failed !== null) {
    parts.push(element("p", "error", `could not load: ${failed}`));
  } else if (minutes.length === 0) {
    const none = element("p", "empty", "No minute of this account in the last hour.");
    none.dataset.empty = "completeness";
    parts.push(none);
  } else {
    const waited = settle === null ? "" : `, or ${formatNumber(settle)} s after it ended`;
    parts.push(element("p", "panel-note",
      `A minute is complete once every series that normally reports has arrived${waited}. `
      + `The latest ${LAST_MINUTES} minutes of each region in the last hour.`));
    const columns = [
      { key: "minute", label: "Minute" },
      { key: "region", label: "Region" },
      { key: "expected", label: "Expected", note: "series", numeric: true },
      { key: "arrived", label: "Arrived", note: "series", numeric: true },
      { key: "complete", label: "Complete" },
      { key: "by", label: "By" },
      { key: "completed", label: "Completed at" },
    ];
    const clock = (seconds) => (seconds === null ? { value: null } : { value: seconds, text: formatClock(seconds) });
    const table = sortableTable({
      id: `completeness-${account}`,
      caption: "Which minutes the receiver holds complete",
      columns,
      rows: minutes.map((minute) => ({
        id: `${minute.region} ${minute.minute}`,
        cells: {
          minute: clock(minute.minute),
          region: { value: minute.region },
          expected: { value: minute.expected },
          arrived: { value: minute.arrived },
          complete: { value: minute.complete ? "yes" : "no", text: minute.complete ? "complete" : "waiting" },
          by: { value: minute.by ?? "", text: BY[minute.by] ?? NO_VALUE },
          completed: clock(minute.completed),
        },
      })),
      initialSort: { key: "minute", descending: true },
    });
    parts.push(scrolling(table));
  }
  return panelSection("completeness", "Complete minutes", ...parts);
}
