// Where the dashboard is: the page, the time range and a table page's region live in the
// URL's hash, so every view can be bookmarked and the server always answers with the same page.
//   #/                                  the accounts
//   #/account/<service>?range=6h        one account (service)
//   #/account/<service>?tag=team&tag-value=payments&group-by=env
//                                       its tables with one tag (tag-value left out: any
//                                       value of it), grouped by the values of another
//   #/table/<service>/<endpoint>        one table or index (endpoint "<table>/<index>"), every
//                                       region it reports from merged
//   #/table/<service>/<endpoint>?region=eu-west-1   the table or index in one region
//   #/pipeline                          the metric streams and Firehose streams of every account
// Names are URL-encoded, so an index's "/" cannot be mistaken for a separator.

export const RANGES = {
  "1h": { seconds: 3600, step: "1m" },
  "6h": { seconds: 6 * 3600, step: "1m" },
  "24h": { seconds: 24 * 3600, step: "1m" },
  // A week of minutes is 10,080 points a series: hourly points draw the same picture.
  "7d": { seconds: 7 * 86400, step: "1h" },
};
export const DEFAULT_RANGE = "1h";
const STEP_SECONDS = { "1m": 60, "1h": 3600 };
// The account page's tag controls: route field → hash parameter.
const TAG_PARAMS = { tag: "tag", tagValue: "tag-value", groupBy: "group-by" };

export function parseHash(hash) {
  const text = hash.replace(/^#/, "");
  const mark = text.indexOf("?");
  const path = mark < 0 ? text : text.slice(0, mark);
  const params = new URLSearchParams(mark < 0 ? "" : text.slice(mark + 1));
  const asked = params.get("range");
  const range = asked !== null && Object.hasOwn(RANGES, asked) ? asked : DEFAULT_RANGE;
  let parts;
  try {
    parts = path.split("/").filter((part) => part !== "").map(decodeURIComponent);
  } catch {
    return { page: "unknown", range };
  }
  if (parts.length === 0) return { page: "accounts", range };
  if (parts[0] === "pipeline" && parts.length === 1) return { page: "pipeline", range };
  if (parts[0] === "account" && parts.length === 2) {
    const tags = {};
    for (const [field, name] of Object.entries(TAG_PARAMS)) {
      const value = params.get(name);
      if (value) tags[field] = value;
    }
    // A tag's value means nothing without its key.
    if (tags.tag === undefined) delete tags.tagValue;
    return { page: "account", service: parts[1], range, ...tags };
  }
  if (parts[0] === "table" && parts.length === 3) {
    const region = params.get("region");
    return { page: "table", service: parts[1], endpoint: parts[2], range, ...(region ? { region } : {}) };
  }
  return { page: "unknown", range };
}

// A region is kept on a table page only: account values always span the account's regions.
// The tag filter and grouping are the account page's.
export function hrefFor({ page, service, endpoint, range, region, ...tags }) {
  const params = new URLSearchParams();
  if (range && range !== DEFAULT_RANGE) params.set("range", range);
  if (page === "table" && region) params.set("region", region);
  if (page === "account") {
    for (const [field, name] of Object.entries(TAG_PARAMS)) if (tags[field]) params.set(name, tags[field]);
  }
  const query = params.toString() === "" ? "" : `?${params}`;
  const enc = encodeURIComponent;
  if (page === "account") return `#/account/${enc(service)}${query}`;
  if (page === "table") return `#/table/${enc(service)}/${enc(endpoint)}${query}`;
  if (page === "pipeline") return `#/pipeline${query}`;
  return `#/${query}`;
}

// The window every query of one load shares: epoch seconds, the start aligned to the step
// so the first bucket of the range is whole.
export function timeWindow(range, nowMs) {
  const { seconds, step } = RANGES[range];
  const stepS = STEP_SECONDS[step];
  const end = Math.floor(nowMs / 1000);
  const start = Math.floor((end - seconds) / stepS) * stepS;
  return { start, end, step, stepS };
}
