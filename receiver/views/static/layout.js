// What the account and table pages chart, grouped as SkyWalking's DynamoDB dashboards group
// it. A chart lists its series as [metric suffix, legend label]; the page adds the scope's
// prefix (aws_dynamodb_ or aws_dynamodb_endpoint_). `counts` marks per-bucket counts, whose
// unit is per minute or per hour with the step.

export const SERVICE_PREFIX = "aws_dynamodb_";
export const ENDPOINT_PREFIX = "aws_dynamodb_endpoint_";

// The account page's table of tables draws this many rows (of each tag group) until asked for
// all: Chromium spent about 0.3 s of CPU building 2,000 rows and 0.5 s styling and laying them
// out, on every minute's refresh.
export const TABLE_ROWS_AT_FIRST = 100;

// Every operation key of the rules (`<op>`) and the CloudWatch operations it covers. The four
// `fixed` ones (SkyWalking's) have a latency chart on every page; operations.js shows the
// others where they report.
export const OPERATIONS = [
  { key: "get", label: "Get", covers: "GetItem, BatchGetItem", fixed: true },
  { key: "put", label: "Put", covers: "PutItem, BatchWriteItem", fixed: true },
  { key: "query", label: "Query", covers: "Query", fixed: true },
  { key: "scan", label: "Scan", covers: "Scan", fixed: true },
  { key: "update", label: "Update", covers: "UpdateItem" },
  { key: "delete", label: "Delete", covers: "DeleteItem" },
  { key: "batch_get", label: "Batch get", covers: "BatchGetItem" },
  { key: "batch_write", label: "Batch write", covers: "BatchWriteItem" },
  { key: "transact_get", label: "Transactional get", covers: "TransactGetItems" },
  { key: "transact_write", label: "Transactional write", covers: "TransactWriteItems" },
  { key: "execute_statement", label: "PartiQL statement", covers: "ExecuteStatement" },
  { key: "batch_execute_statement", label: "PartiQL batch", covers: "BatchExecuteStatement" },
  { key: "execute_transaction", label: "PartiQL transaction", covers: "ExecuteTransaction" },
  { key: "get_records", label: "Stream read", covers: "GetRecords" },
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

// The latency of one operation's successful requests: the mean, and the percentiles on a table.
export function latencyChart({ key, label, covers }, withPercentiles) {
  return {
    id: `${key}-latency`,
    title: `${label} latency (${covers})`,
    series: [
      [`${key}_successful_request_latency`, "average"],
      ...(withPercentiles
        ? PERCENTILES.map(([suffix, name]) => [`${key}_successful_request_latency_${suffix}`, name])
        : []),
    ],
  };
}

function latency(withPercentiles) {
  return OPERATIONS.filter((operation) => operation.fixed).map((operation) => latencyChart(operation, withPercentiles));
}

const ITEMS = {
  title: "Items",
  charts: [
    { id: "returned-items", title: "Returned items", counts: true,
      series: [
        ["query_returned_item_count", "query"], ["scan_returned_item_count", "scan"],
        ["execute_statement_returned_item_count", "PartiQL select"],
      ] },
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
