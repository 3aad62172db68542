// Loading the series of one view. A failed query becomes { error } on its own result, so
// it marks its chart or cell instead of blanking the page; ctx.errors collects the messages
// for the banner. Only leaving the view (an abort) stops the whole load.

import { fetchPoints } from "./api.js";

export async function loadSeries(ctx, metric, service, endpoint) {
  if (!ctx.catalog.has(metric)) return { metric, points: [], undefinedMetric: true };
  try {
    const points = await fetchPoints(metric, service, endpoint, ctx.window, ctx.signal);
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
};

// One number for the range: each series reduced on its own (its mean, total or latest
// value), then added up (read + write ...); null when no series has a point.
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
