// What the account and table pages chart, grouped as SkyWalking's DynamoDB dashboards group
// it. A chart lists its series as [metric suffix, legend label]; the page adds the scope's
// prefix (aws_dynamodb_ or aws_dynamodb_endpoint_). `counts` marks per-bucket counts, whose
// unit is per minute or per hour with the step.

export const SERVICE_PREFIX = "aws_dynamodb_";
export const ENDPOINT_PREFIX = "aws_dynamodb_endpoint_";

const OPERATIONS = [
  ["get", "Get latency", "GetItem, BatchGetItem"],
  ["put", "Put latency", "PutItem, BatchWriteItem"],
  ["query", "Query latency", "Query"],
  ["scan", "Scan latency", "Scan"],
];
const PERCENTILES = [["p50", "p50"], ["p90", "p90"], ["p95", "p95"], ["p99", "p99"], ["p99_9", "p99.9"]];

function capacity(direction) {
  return {
    id: `${direction}-capacity`,
    title: `${direction === "read" ? "Read" : "Write"} capacity`,
    series: [
      [`provisioned_${direction}_capacity_units`, "provisioned"],
      [`consumed_${direction}_capacity_units`, "consumed"],
    ],
  };
}

function latency(withPercentiles) {
  return OPERATIONS.map(([operation, title, operations]) => ({
    id: `${operation}-latency`,
    title: `${title} (${operations})`,
    series: [
      [`${operation}_successful_request_latency`, "average"],
      ...(withPercentiles
        ? PERCENTILES.map(([suffix, label]) => [`${operation}_successful_request_latency_${suffix}`, label])
        : []),
    ],
  }));
}

const ITEMS = {
  title: "Items",
  charts: [
    { id: "returned-items", title: "Returned items", counts: true,
      series: [["query_returned_item_count", "query"], ["scan_returned_item_count", "scan"]] },
    { id: "ttl-deleted-items", title: "Items deleted by TTL", counts: true,
      series: [["time_to_live_deleted_item_count", "deleted"]] },
  ],
};

const readWrite = (name) => [[`read_${name}`, "read"], [`write_${name}`, "write"]];

function problems(withUserErrors) {
  return {
    title: "Problems",
    charts: [
      { id: "throttled-requests", title: "Throttled requests", counts: true, series: readWrite("throttled_requests") },
      { id: "throttle-events", title: "Throttle events", counts: true, series: readWrite("throttle_events") },
      { id: "system-errors", title: "System errors", counts: true, series: readWrite("system_errors") },
      ...(withUserErrors
        ? [{ id: "user-errors", title: "User errors (HTTP 400)", counts: true, series: [["user_errors", "user errors"]] }]
        : []),
      { id: "conditional-check-failures", title: "Conditional check failures", counts: true,
        series: [["conditional_check_failed_requests", "failed checks"]] },
      { id: "transaction-conflicts", title: "Transaction conflicts", counts: true,
        series: [["transaction_conflict", "conflicts"]] },
    ],
  };
}

export const ACCOUNT_GROUPS = [
  {
    title: "Capacity",
    charts: [
      { id: "account-limits", title: "Account limits",
        series: [
          ["account_max_reads", "max reads"], ["account_max_writes", "max writes"],
          ["account_max_table_level_reads", "max reads per table"],
          ["account_max_table_level_writes", "max writes per table"],
        ] },
      { id: "account-utilization", title: "Provisioned share of the account limits",
        series: [
          ["account_provisioned_read_capacity_utilization", "read, all tables"],
          ["account_provisioned_write_capacity_utilization", "write, all tables"],
          ["max_provisioned_read_capacity_utilization", "read, largest table"],
          ["max_provisioned_write_capacity_utilization", "write, largest table"],
        ] },
      capacity("read"),
      capacity("write"),
    ],
  },
  { title: "Latency", charts: latency(false) },
  ITEMS,
  problems(true),
];

export const TABLE_GROUPS = [
  {
    title: "Capacity",
    charts: [
      capacity("read"),
      capacity("write"),
      { id: "utilization", title: "Capacity utilization",
        series: [["read_capacity_utilization", "read"], ["write_capacity_utilization", "write"]] },
    ],
  },
  { title: "Latency", charts: latency(true) },
  ITEMS,
  problems(false),
];

// The account page's table of tables: one number per cell for the range. `reduce`: mean
// (of a rate or a share), last (a setting such as provisioned units) or sum (a count).
export const TABLE_COLUMNS = [
  { key: "consumed_read", label: "Read consumed", note: "units/s, mean",
    metrics: ["consumed_read_capacity_units"], reduce: "mean" },
  { key: "provisioned_read", label: "Read provisioned", note: "units, latest",
    metrics: ["provisioned_read_capacity_units"], reduce: "last" },
  { key: "read_utilization", label: "Read utilization", note: "%, mean",
    metrics: ["read_capacity_utilization"], reduce: "mean" },
  { key: "consumed_write", label: "Write consumed", note: "units/s, mean",
    metrics: ["consumed_write_capacity_units"], reduce: "mean" },
  { key: "provisioned_write", label: "Write provisioned", note: "units, latest",
    metrics: ["provisioned_write_capacity_units"], reduce: "last" },
  { key: "write_utilization", label: "Write utilization", note: "%, mean",
    metrics: ["write_capacity_utilization"], reduce: "mean" },
  { key: "throttled", label: "Throttled", note: "requests, read + write, total",
    metrics: ["read_throttled_requests", "write_throttled_requests"], reduce: "sum" },
  { key: "system_errors", label: "System errors", note: "requests, read + write, total",
    metrics: ["read_system_errors", "write_system_errors"], reduce: "sum" },
];

// The accounts page's headline numbers (service metrics).
export const ACCOUNT_COLUMNS = [
  { key: "consumed_read", label: "Read consumed", note: "units/s, mean",
    metrics: ["consumed_read_capacity_units"], reduce: "mean" },
  { key: "consumed_write", label: "Write consumed", note: "units/s, mean",
    metrics: ["consumed_write_capacity_units"], reduce: "mean" },
  { key: "throttled", label: "Throttled", note: "requests, read + write, total",
    metrics: ["read_throttled_requests", "write_throttled_requests"], reduce: "sum" },
  { key: "system_errors", label: "System errors", note: "requests, read + write, total",
    metrics: ["read_system_errors", "write_system_errors"], reduce: "sum" },
  { key: "user_errors", label: "User errors", note: "requests, total",
    metrics: ["user_errors"], reduce: "sum" },
];
