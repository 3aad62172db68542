// The alarms strip above every page: the alarms that are on (GET /api/v1/alarms), each
// linking to its table or account (or the Pipeline page), or a quiet line when none is.

import { fetchAlarms } from "./api.js";
import { formatClock } from "./format.js";
import { hrefFor } from "./routes.js";

// Alarms on the metric pipeline (rules/aws-pipeline) belong to the Pipeline page.
const PIPELINE_SERVICE = "aws-metric-stream::";

function targetOf(alarm, range) {
  if (alarm.service.startsWith(PIPELINE_SERVICE)) return hrefFor({ page: "pipeline", range });
  return alarm.endpoint
    ? hrefFor({ page: "table", service: alarm.service, endpoint: alarm.endpoint, range })
    : hrefFor({ page: "account", service: alarm.service, range });
}

function item(alarm, range) {
  const entry = document.createElement("li");
  entry.className = "alarm";
  const target = targetOf(alarm, range);
  const anchor = Object.assign(document.createElement("a"), { href: target, textContent: alarm.message });
  const since = Object.assign(document.createElement("time"), {
    className: "since",
    textContent: `since ${formatClock(alarm.since)}`,
    dateTime: new Date(alarm.since * 1000).toISOString(),
  });
  entry.append(anchor, " ", since);
  entry.dataset.rule = alarm.rule;
  return entry;
}

// Fills ``strip`` with the active alarms; an API failure is said in the strip itself.
export async function showAlarms(strip, route, signal) {
  let active;
  try {
    active = (await fetchAlarms(signal)).active;
  } catch (error) {
    if (error.name === "AbortError") return;
    strip.className = "alarms failed";
    strip.textContent = `Alarms could not be loaded: ${error.message}`;
    return;
  }
  if (signal.aborted) return;
  if (active.length === 0) {
    strip.className = "alarms quiet";
    strip.textContent = "No alarms on.";
    return;
  }
  strip.className = "alarms on";
  const title = Object.assign(document.createElement("strong"), {
    textContent: active.length === 1 ? "1 alarm on:" : `${active.length} alarms on:`,
  });
  const list = document.createElement("ul");
  list.append(...active.map((alarm) => item(alarm, route.range)));
  strip.replaceChildren(title, list);
}
