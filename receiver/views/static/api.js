// The receiver's query API (README "HTTP"): JSON in, an ApiError naming what failed out.

export class ApiError extends Error {
  constructor(message) {
    super(message);
    this.name = "ApiError";
  }
}

async function getJson(path, params, signal) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null) url.searchParams.set(name, value);
  }
  let response;
  try {
    response = await fetch(url, { signal, headers: { Accept: "application/json" } });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(`the receiver did not answer ${path} (${error.message})`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch (error) {
    if (error.name === "AbortError") throw error;
  }
  if (!response.ok) {
    const reason = body && typeof body.error === "string" ? body.error : response.statusText;
    throw new ApiError(`${path} answered ${response.status}: ${reason}`);
  }
  if (body === null || typeof body !== "object") throw new ApiError(`${path} did not answer JSON`);
  return body;
}

export async function fetchEntities(signal) {
  const body = await getJson("/api/v1/entities", {}, signal);
  if (!Array.isArray(body.services)) throw new ApiError("/api/v1/entities answered without services");
  return body.services;
}

// Metric name → { scope, unit, description }, for the metrics the rules define.
export async function fetchCatalog(signal) {
  const body = await getJson("/api/v1/metrics", {}, signal);
  if (!Array.isArray(body.metrics)) throw new ApiError("/api/v1/metrics answered without metrics");
  return new Map(body.metrics.map((metric) => [metric.name, metric]));
}

// The alarms that are on and the recent notifications (README "Alarms").
export async function fetchAlarms(signal) {
  const body = await getJson("/api/v1/alarms", {}, signal);
  if (!Array.isArray(body.active)) throw new ApiError("/api/v1/alarms answered without active");
  return body;
}

// The points [[epoch seconds, value], ...] of one metric of one entity in the window; `region`
// narrows an endpoint metric to the table in that region (without it: every region merged).
export async function fetchPoints(metric, service, endpoint, region, window, signal) {
  const body = await getJson(
    "/api/v1/query",
    { metric, service, endpoint, region, start: window.start, end: window.end, step: window.step },
    signal,
  );
  if (!Array.isArray(body.points)) throw new ApiError(`/api/v1/query answered without points for ${metric}`);
  return body.points;
}

// The account page's table of tables in one request (GET /api/v1/summary): { figures: [{ metric,
// reduce } ...], endpoints: { endpoint: { merged: [figure or null ...], regions: { region: [figure
// or null ...] } } } }, each figure the metric's points in the window reduced to one number, the
// lists in the order of `figures`.
export async function fetchSummary(service, window, signal) {
  const body = await getJson(
    "/api/v1/summary", { service, start: window.start, end: window.end, step: window.step }, signal,
  );
  if (!Array.isArray(body.figures) || typeof body.endpoints !== "object" || body.endpoints === null) {
    throw new ApiError("/api/v1/summary answered without figures and endpoints");
  }
  return body;
}

// The price of metric updates and the completeness of the window's minutes (GET /api/v1/pipeline):
// { metric_update_price_per_1000, settle_seconds, minutes: [{ account, region, minute, expected,
// arrived, complete, completed, by } ...] }.
export async function fetchPipeline(window, signal) {
  const body = await getJson("/api/v1/pipeline", { start: window.start, end: window.end }, signal);
  if (!Array.isArray(body.minutes)) throw new ApiError("/api/v1/pipeline answered without minutes");
  return body;
}

// What the table inventory knows of the account's tables (GET /api/v1/tables): { tables:
// [entry of a table in a region ...], inventory: { enabled, last_poll } }.
export async function fetchTables(service, signal) {
  const body = await getJson("/api/v1/tables", { service }, signal);
  if (!Array.isArray(body.tables) || typeof body.inventory !== "object" || body.inventory === null) {
    throw new ApiError("/api/v1/tables answered without tables and inventory");
  }
  return body;
}
