// The dashboard's shell: reads the hash, loads and draws the view, keeps the crumbs and the
// range picker in step, refreshes every minute and says when the API fails.

import { showAlarms } from "./alarms.js";
import { fetchCatalog } from "./api.js";
import { drawCharts } from "./chart.js";
import { formatClock } from "./format.js";
import { pipelineView } from "./pipeline.js";
import { hrefFor, parseHash, RANGES, timeWindow } from "./routes.js";
import { accountName, accountsView, accountView, tableView, unknownView } from "./views.js";

const REFRESH_MS = 60_000;
const VIEWS = {
  accounts: accountsView, account: accountView, table: tableView, pipeline: pipelineView, unknown: unknownView,
};

const main = document.getElementById("view");
const crumbs = document.getElementById("crumbs");
const ranges = document.getElementById("ranges");
const updated = document.getElementById("updated");
const alert = document.getElementById("alert");
const alarms = document.getElementById("alarms");
const pipeline = document.getElementById("pipeline-link");

let loading = null; // the AbortController of the load in progress
let shownHash = null; // the hash whose view is on the page
let lastLoad = 0;

function link(text, href, current) {
  const anchor = document.createElement("a");
  anchor.href = href;
  anchor.textContent = text;
  if (current) anchor.setAttribute("aria-current", current);
  return anchor;
}

function drawChrome(route) {
  const trail = [link("Accounts", hrefFor({ page: "accounts", range: route.range }))];
  if (route.service !== undefined) {
    trail.push(link(accountName(route.service), hrefFor({ page: "account", service: route.service, range: route.range })));
  }
  if (route.endpoint !== undefined) {
    trail.push(link(route.endpoint, hrefFor({ ...route, page: "table" })));
  }
  if (route.page === "pipeline") trail.push(link("Pipeline", hrefFor(route)));
  trail.at(-1).setAttribute("aria-current", "page");
  pipeline.href = hrefFor({ page: "pipeline", range: route.range });
  if (route.page === "pipeline") pipeline.setAttribute("aria-current", "page");
  else pipeline.removeAttribute("aria-current");
  crumbs.replaceChildren(...trail.flatMap((item, index) => (index === 0 ? [item] : [" › ", item])));
  ranges.replaceChildren(...Object.keys(RANGES).map((range) =>
    link(range, hrefFor({ ...route, range }), range === route.range ? "true" : null)));
  document.title = `${VIEWS[route.page].title(route)} · DynamoDB`;
}

function showAlert(messages) {
  if (messages.length === 0) {
    alert.hidden = true;
    alert.textContent = "";
    return;
  }
  const more = messages.length > 1 ? ` (and ${messages.length - 1} more)` : "";
  alert.textContent = `The API failed: ${messages[0]}${more}. Retrying every minute.`;
  alert.hidden = false;
}

async function show({ refresh }) {
  const hash = window.location.hash;
  const route = parseHash(hash);
  const view = VIEWS[route.page];
  loading?.abort();
  const controller = new AbortController();
  loading = controller;
  drawChrome(route);
  if (!refresh || hash !== shownHash) {
    main.replaceChildren(Object.assign(document.createElement("p"), { className: "loading", textContent: "Loading…" }));
    main.setAttribute("aria-busy", "true");
  }
  const ctx = { route, window: timeWindow(route.range, Date.now()), signal: controller.signal, errors: [] };
  const alarmsShown = showAlarms(alarms, route, controller.signal);
  let data;
  let failure = null;
  try {
    ctx.catalog = await fetchCatalog(controller.signal);
    data = await view.load(ctx);
  } catch (error) {
    if (error.name === "AbortError") return;
    failure = error;
  }
  await alarmsShown;
  if (controller.signal.aborted) return;
  loading = null;
  lastLoad = Date.now();
  main.replaceChildren();
  main.removeAttribute("aria-busy");
  if (failure) {
    // An error other than the API's is a bug: say so where developers look.
    if (failure.name !== "ApiError") console.error(failure);
    const heading = Object.assign(document.createElement("h1"), { textContent: view.title(route) });
    const note = Object.assign(document.createElement("p"), { className: "error", textContent: `could not load this page: ${failure.message}` });
    main.append(heading, note);
    showAlert([failure.message]);
  } else {
    view.draw(main, data, ctx);
    showAlert(ctx.errors);
  }
  shownHash = hash;
  // Which view is on the page, for anything that waits for it (the browser tests do).
  main.dataset.shown = hash;
  updated.textContent = `updated ${formatClock(lastLoad / 1000)}, every minute`;
  updated.dateTime = new Date(lastLoad).toISOString();
}

function refresh() {
  if (!document.hidden) show({ refresh: true });
}

let resizing = 0;
window.addEventListener("resize", () => {
  clearTimeout(resizing);
  resizing = setTimeout(() => drawCharts(main), 150);
});
window.addEventListener("hashchange", () => show({ refresh: false }));
// A hidden tab skips its refreshes and catches up when it is shown again.
document.addEventListener("visibilitychange", () => {
  if (!document.hidden && Date.now() - lastLoad >= REFRESH_MS) refresh();
});
setInterval(refresh, REFRESH_MS);
show({ refresh: false });
