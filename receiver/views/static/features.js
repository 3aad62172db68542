// The panels of what only some tables use: global table replication, DynamoDB Streams,
// Kinesis Data Streams change data capture and online index builds. Each is an optional
// group (groups.js): a table that does not report it shows no such panel. Per-region series
// read the entities "<table>→<region>", per-index series "<table>/<index>" (/api/v1/entities).

import { loadGroups } from "./groups.js";
import { latencyChart, OPERATIONS } from "./layout.js";

// Between a table and a receiving region in the endpoint of a per-region metric.
export const REGION_SEPARATOR = "→";

// Tables and indexes, without the per-region entities of replication.
export function tablesAndIndexes(endpoints) {
  return endpoints.filter((name) => !name.includes(REGION_SEPARATOR));
}

function tableGroups(endpoint, endpoints) {
  const regions = endpoints.filter((name) => name.startsWith(endpoint + REGION_SEPARATOR));
  // An index page shows its own build; a table page the builds of its indexes.
  const indexes = endpoint.includes("/") ? [endpoint] : endpoints.filter((name) => name.startsWith(`${endpoint}/`));
  const perRegion = (suffix) =>
    regions.map((name) => [suffix, `to ${name.slice(endpoint.length + REGION_SEPARATOR.length)}`, name]);
  const perIndex = (suffix) => indexes.map((name) => [suffix, name.slice(name.indexOf("/") + 1), name]);
  const getRecords = OPERATIONS.find((operation) => operation.key === "get_records");
  return [
    { id: "replication", title: "Replication (global table)", optional: true, charts: [
      { id: "replication-latency", title: "Replication latency",
        series: [["replication_latency", "all regions, weighted mean"], ...perRegion("replication_latency_by_region")] },
      { id: "pending-replication", title: "Pending replication", counts: true,
        series: [["pending_replication_count", "all regions"], ...perRegion("pending_replication_count_by_region")] },
    ] },
    { id: "stream", title: "DynamoDB Streams", optional: true, charts: [
      { id: "stream-records", title: "Stream records read (GetRecords)", counts: true,
        series: [["stream_returned_records_count", "records"]] },
      { id: "stream-bytes", title: "Stream bytes read (GetRecords)", counts: true,
        series: [["stream_returned_bytes", "bytes"]] },
      { ...latencyChart(getRecords, true), id: "stream-latency" },
    ] },
    { id: "kinesis", title: "Kinesis Data Streams (change data capture)", optional: true, charts: [
      { id: "kinesis-age", title: "Age of the oldest record not yet in Kinesis",
        series: [["kinesis_age_of_oldest_unreplicated_record", "oldest record"]] },
      { id: "kinesis-failed", title: "Records that failed to replicate to Kinesis", counts: true,
        series: [["kinesis_failed_to_replicate_record_count", "failed"]] },
      // A Maximum (the most in one sample), not a count per bucket.
      { id: "kinesis-throttled", title: "Records throttled by Kinesis (most in one sample)",
        series: [["kinesis_throttled_put_record_count", "throttled"]] },
    ] },
    { id: "index-builds", title: "Index builds", optional: true, charts: [
      { id: "index-build-progress", title: "Index build progress", series: perIndex("online_index_percentage_progress") },
      { id: "index-build-capacity", title: "Write capacity consumed by index builds", counts: true,
        series: perIndex("online_index_consumed_write_capacity") },
      { id: "index-build-throttles", title: "Index build throttle events", counts: true,
        series: perIndex("online_index_throttle_events") },
    ] },
  ];
}

// The account's replication over all its tables.
const ACCOUNT_GROUPS = [
  { id: "replication", title: "Replication (global tables)", optional: true, charts: [
    { id: "replication-latency", title: "Replication latency",
      series: [["replication_latency", "all tables, weighted mean"]] },
    { id: "pending-replication", title: "Pending replication", counts: true,
      series: [["pending_replication_count", "all tables"]] },
  ] },
];

// `account`: a promise of the account's entry of /api/v1/entities (null when it could not be
// loaded: then only the table's own series load).
export async function loadTableFeatures(ctx, prefix, service, endpoint, account) {
  const endpoints = (await account)?.endpoints ?? [];
  return loadGroups(ctx, tableGroups(endpoint, endpoints), prefix, service, endpoint);
}

export function loadAccountFeatures(ctx, prefix, service) {
  return loadGroups(ctx, ACCOUNT_GROUPS, prefix, service);
}
