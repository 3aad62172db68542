// Loading the series of one view. A failed query becomes { error } on its own result, so
// it marks its chart or cell instead of blanking the page; ctx.errors collects the messages
// for the banner. Only leaving the view (an abort) stops the whole load.

import { fetchPoints } from "./api.js";

// Panels that chart the same series share one request: the load keeps each series' promise
// (ctx.loads), so the view still loads everything once, then draws. `region` narrows an
// endpoint's series to one region; by default it is the page's (a table page's region
// switch), and without one the series merges every region. Account series are never narrowed.
export function loadSeries(ctx, metric, service, endpoint, region = ctx.route.region) {
  if (!ctx.catalog.has(metric)) return Promise.resolve({ metric, points: [], undefinedMetric: true });
  const narrowed = endpoint === undefined || endpoint === null ? null : region ?? null;
  ctx.loads ??= new Map();
  const key = JSON.stringify([metric, service, endpoint ?? null, narrowed]);
  if (!ctx.loads.has(key)) ctx.loads.set(key, fetchSeries(ctx, metric, service, endpoint, narrowed));
  return ctx.loads.get(key);
}

async function fetchSeries(ctx, metric, service, endpoint, region) {
  try {
    const points = await fetchPoints(metric, service, endpoint, region, ctx.window, ctx.signal);
    return { metric, points };
  } catch (error) {
    if (error.name === "AbortError") throw error;
    ctx.errors.push(error.message);
    return { metric, points: [], error: error.message };
  }
}

const REDUCERS = {
  mean: (values) => values.reduce((total, value) => total + value, 0) / values.length,
  sum: (values) => values.reduce((total, value) => total + value, 0),
  last: (values) => values[values.length - 1],
  max: (values) => values.reduce((most, value) => Math.max(most, value), -Infinity),
};

// Whether a series has something to show: points, or a failure to say so.
export function reports(result) {
  return result.points.length > 0 || Boolean(result.error);
}

// One number for the range: each series reduced on its own (its mean, total, largest or
// latest value), then added up (read + write ...); null when no series has a point.
export function summarize(results, reduce) {
  const parts = results
    .filter((result) => result.points.length > 0)
    .map((result) => REDUCERS[reduce](result.points.map((point) => point[1])));
  return parts.length === 0 ? null : parts.reduce((total, part) => total + part, 0);
}

export function firstError(results) {
  const failed = results.find((result) => result.error);
  return failed ? failed.error : null;
}
