// Line charts drawn as SVG. Time runs along x over the view's whole range (so missing data
// shows as missing), the series' unit is on y. Each series is one path: a gap in the data
// breaks the line, and a point without neighbours shows as a dot (a zero-length segment
// with round caps).

import {
  formatClock, formatDay, formatMoment, formatNumber, formatValue, timeZoneLabel,
} from "./format.js";

export const EMPTY_MESSAGE = "no data yet — is the metric stream delivering?";
export const COLORS = [
  "#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#475569", "#9a3412",
];

const SVG_NS = "http://www.w3.org/2000/svg";
const HEIGHT = 200;
const MARGIN = { top: 20, right: 16, bottom: 38 };
const NEAR_PX = 12; // how far from a point the pointer still shows its values
const TICK_STEPS = [60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
const specs = new WeakMap(); // figure → its spec, to draw again at a new width

function svg(tag, attributes, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function html(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function swatch(index) {
  const mark = html("span", "swatch");
  mark.style.backgroundColor = COLORS[index % COLORS.length];
  return mark;
}

// spec: { id, title, window, series: [{ metric, label, unit, points, error, endpoint? }] };
// a series of another entity than the page's names it in data-endpoint.
// The figure is drawn by drawCharts once it is in the page and has a width.
export function chartFigure(spec) {
  const figure = html("figure", "chart");
  figure.dataset.chart = spec.id;
  figure.append(html("figcaption", "", spec.title), html("ul", "legend"), html("div", "plot"));
  specs.set(figure, spec);
  return figure;
}

export function drawCharts(root) {
  // Every width first, then every drawing: a width read after a drawing lays the page out
  // again, and with a table of 2,000 rows on it that took a tenth of a second per chart.
  const figures = [...root.querySelectorAll("figure.chart")];
  const widths = figures.map((figure) => figure.querySelector(".plot").clientWidth);
  figures.forEach((figure, index) => drawChart(figure, widths[index]));
}

function drawChart(figure, width) {
  const spec = specs.get(figure);
  const plot = figure.querySelector(".plot");
  const units = [...new Set(spec.series.map((series) => series.unit))];
  const failed = spec.series.find((series) => series.error);
  const hasData = spec.series.some((series) => series.points.length > 0);

  figure.querySelector(".legend").replaceChildren(
    ...spec.series.map((series, index) => {
      const item = html("li", series.points.length > 0 ? "" : "no-data");
      item.dataset.metric = series.metric;
      if (series.endpoint) item.dataset.endpoint = series.endpoint;
      const unit = units.length > 1 ? ` (${series.unit})` : "";
      item.append(swatch(index), `${series.label}${unit}`);
      return item;
    }),
  );
  if (failed) {
    figure.dataset.state = "error";
    plot.replaceChildren(html("p", "error", `could not load: ${failed.error}`));
  } else if (!hasData) {
    figure.dataset.state = "empty";
    plot.replaceChildren(html("p", "empty", EMPTY_MESSAGE));
  } else {
    figure.dataset.state = "data";
    const tip = html("div", "tip");
    tip.hidden = true;
    plot.replaceChildren(drawSvg(spec, units.join(" · "), width, tip), tip);
  }
}

function drawSvg(spec, axisUnit, width, tip) {
  const { start, end, stepS } = spec.window;
  const scale = valueScale(spec.series.flatMap((series) => series.points.map((point) => point[1])));
  const labels = scale.ticks.map(formatNumber);
  // Room for the longest value label on the left.
  const left = Math.max(40, 10 + 7 * Math.max(...labels.map((label) => label.length)));
  const right = Math.max(left + 10, width - MARGIN.right);
  const top = MARGIN.top;
  const bottom = HEIGHT - MARGIN.bottom;
  const x = (t) => left + ((t - start) / (end - start)) * (right - left);
  const y = (v) => bottom - ((v - scale.low) / (scale.high - scale.low)) * (bottom - top);

  const root = svg("svg", {
    width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`, role: "img",
    "aria-label": `${spec.title} in ${axisUnit} over time`,
  });
  scale.ticks.forEach((value, index) => {
    root.append(
      svg("line", { class: "grid", x1: left, x2: right, y1: y(value), y2: y(value) }),
      svg("text", { class: "tick", x: left - 6, y: y(value) + 4, "text-anchor": "end" }, labels[index]),
    );
  });
  const time = timeTicks(start, end, right - left);
  for (const t of time.ticks) {
    root.append(
      svg("line", { class: "tick-mark", x1: x(t), x2: x(t), y1: bottom, y2: bottom + 4 }),
      svg("text", { class: "tick", x: x(t), y: bottom + 16, "text-anchor": "middle" }, time.label(t)),
    );
  }
  root.append(
    svg("line", { class: "axis", x1: left, x2: right, y1: bottom, y2: bottom }),
    svg("text", { class: "axis-unit y-unit", x: 4, y: 12 }, axisUnit),
    svg("text", { class: "axis-unit x-unit", x: right, y: HEIGHT - 4, "text-anchor": "end" },
      `time (${timeZoneLabel(end)})`),
  );
  spec.series.forEach((series, index) => {
    const path = svg("path", {
      class: "line", "data-metric": series.metric,
      stroke: COLORS[index % COLORS.length], d: linePath(series.points, x, y, stepS),
    });
    if (series.endpoint) path.dataset.endpoint = series.endpoint;
    root.append(path);
  });
  addHover(root, tip, spec, { left, right, top, bottom, x });
  return root;
}

function linePath(points, x, y, stepS) {
  let d = "";
  let previous = null;
  for (const [t, value] of points) {
    const at = `${x(t).toFixed(1)} ${y(value).toFixed(1)}`;
    d += previous !== null && t - previous <= stepS ? `L${at}` : `M${at}h0`;
    previous = t;
  }
  return d;
}

// From zero (or below, for negative values) to a round number above the largest value.
function valueScale(values) {
  let low = Math.min(0, values.reduce((a, b) => Math.min(a, b), Infinity));
  let high = Math.max(0, values.reduce((a, b) => Math.max(a, b), -Infinity));
  if (high === low) high = low + 1;
  const step = niceStep((high - low) / 4);
  low = Math.floor(low / step) * step;
  high = Math.ceil(high / step) * step;
  const ticks = [];
  for (let value = low; value <= high + step / 2; value += step) ticks.push(Number(value.toPrecision(12)));
  return { low, high, ticks };
}

function niceStep(rough) {
  const power = 10 ** Math.floor(Math.log10(rough));
  const fraction = rough / power;
  return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power;
}

// Ticks on the local clock: on the hour, quarter hour ... or at local midnight.
function timeTicks(start, end, width) {
  const most = Math.max(2, Math.floor(width / 60));
  const span = end - start;
  const step = TICK_STEPS.find((candidate) => span / candidate <= most)
    ?? 86400 * Math.ceil(span / 86400 / most);
  const ticks = [];
  if (step >= 86400) {
    const day = new Date(start * 1000);
    day.setHours(0, 0, 0, 0);
    for (; day.getTime() / 1000 <= end; day.setDate(day.getDate() + step / 86400)) {
      if (day.getTime() / 1000 >= start) ticks.push(day.getTime() / 1000);
    }
    return { ticks, label: formatDay };
  }
  const offset = -new Date(start * 1000).getTimezoneOffset() * 60;
  for (let t = Math.ceil((start + offset) / step) * step - offset; t <= end; t += step) ticks.push(t);
  const label = (t) => (span > 86400 && formatClock(t) === "00:00" ? formatDay(t) : formatClock(t));
  return { ticks, label };
}

// A vertical rule and the values of every series at the point nearest the pointer.
function addHover(root, tip, spec, box) {
  const { start, end } = spec.window;
  const lookups = spec.series.map((series) => new Map(series.points));
  const times = [...new Set(spec.series.flatMap((series) => series.points.map((point) => point[0])))]
    .sort((a, b) => a - b);
  const rule = svg("line", { class: "hover-rule", y1: box.top, y2: box.bottom, visibility: "hidden" });
  const target = svg("rect", {
    class: "hover-target", x: box.left, y: box.top, width: box.right - box.left, height: box.bottom - box.top,
  });
  root.append(rule, target);
  const hide = () => {
    rule.setAttribute("visibility", "hidden");
    tip.hidden = true;
  };
  target.addEventListener("pointermove", (event) => {
    const bounds = root.getBoundingClientRect();
    const pointer = event.clientX - bounds.left;
    const at = nearest(times, start + ((pointer - box.left) / (box.right - box.left)) * (end - start));
    if (Math.abs(box.x(at) - pointer) > NEAR_PX) {
      hide();
      return;
    }
    const rows = [];
    spec.series.forEach((series, index) => {
      const value = lookups[index].get(at);
      if (value === undefined) return;
      const row = html("div", "tip-row");
      row.append(swatch(index), `${series.label}: ${formatValue(value, series.unit)}`);
      rows.push(row);
    });
    const px = box.x(at);
    rule.setAttribute("x1", px);
    rule.setAttribute("x2", px);
    rule.setAttribute("visibility", "visible");
    tip.replaceChildren(html("div", "tip-time", formatMoment(at)), ...rows);
    tip.hidden = false;
    // Beside the rule, on the side with more room.
    const onLeft = px > bounds.width / 2;
    tip.style.left = onLeft ? "" : `${px + 10}px`;
    tip.style.right = onLeft ? `${bounds.width - px + 10}px` : "";
    tip.style.top = `${box.top}px`;
  });
  target.addEventListener("pointerleave", hide);
}

function nearest(sorted, t) {
  let low = 0;
  let high = sorted.length - 1;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (sorted[middle] < t) low = middle + 1;
    else high = middle;
  }
  return low > 0 && t - sorted[low - 1] < sorted[low] - t ? sorted[low - 1] : sorted[low];
}
