// Tables of numbers: one number per cell for the range, sortable by any column. The sort
// chosen, and a long table's "show all", survive the minute's refresh.

import { formatNumber, NO_VALUE } from "./format.js";
import { firstError, loadSeries, summarize } from "./load.js";

const sortChoices = new Map(); // table id → { key, descending }
const shownWhole = new Set(); // ids of tables whose every row is drawn ("Show all")

// Every column's number for one entity (in one region, when `region` is given): { key: { value, error } }.
export async function loadCells(ctx, columns, prefix, service, endpoint, region) {
  const cells = {};
  await Promise.all(columns.map(async (column) => {
    const results = await Promise.all(
      column.metrics.map((suffix) => loadSeries(ctx, prefix + suffix, service, endpoint, region)),
    );
    cells[column.key] = { value: summarize(results, column.reduce), error: firstError(results) };
  }));
  return cells;
}

// Every column's number for one entity from the figures of /api/v1/summary (api.js fetchSummary):
// `figures` is the entity's list of numbers for the range (null without points), as loadCells
// would reduce its series, and `named` maps each metric to { index, reduce }: where its number
// is in the list and how it was reduced. `failed`: why the summary could not be loaded (every
// cell says so), or null.
export function summaryCells(columns, prefix, figures, named, failed) {
  const cells = {};
  for (const column of columns) {
    if (failed) {
      cells[column.key] = { value: null, error: failed };
      continue;
    }
    const names = column.metrics.map((suffix) => prefix + suffix);
    const other = names.find((name) => named.has(name) && named.get(name).reduce !== column.reduce);
    if (other !== undefined) {
      const error = `/api/v1/summary reduces ${other} by ${named.get(other).reduce}, the column by ${column.reduce}`;
      cells[column.key] = { value: null, error };
      continue;
    }
    const parts = names.map((name) => (named.has(name) ? figures?.[named.get(name).index] ?? null : null))
      .filter((part) => part !== null);
    cells[column.key] = { value: parts.length === 0 ? null : parts.reduce((total, part) => total + part, 0), error: null };
  }
  return cells;
}

// columns: [{ key, label, note?, numeric? }]; rows: [{ id, group?, cells: { key: { value, text?, href?, error? } } }].
// groups (optional): [{ id, label }] in order; each row names its group's id, and the rows
// sort within their group, under a heading row of it (a group without rows is left out).
// limit (optional): at most this many rows of each group are drawn, the first in the sort's
// order, with a button in the table's foot to draw them all.
export function sortableTable({ id, caption, columns, rows, initialSort, groups, limit }) {
  const choice = sortChoices.get(id) ?? initialSort;
  const table = document.createElement("table");
  table.className = "numbers";
  table.dataset.table = id;
  const title = document.createElement("caption");
  title.textContent = caption;
  table.append(title);

  const head = table.createTHead().insertRow();
  for (const column of columns) {
    const th = document.createElement("th");
    th.scope = "col";
    th.dataset.column = column.key;
    if (column.numeric) th.className = "numeric";
    th.setAttribute("aria-sort", choice.key !== column.key ? "none" : choice.descending ? "descending" : "ascending");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = column.label;
    if (column.note) {
      const note = document.createElement("span");
      note.className = "note";
      note.textContent = column.note;
      button.append(note);
    }
    button.addEventListener("click", () => {
      // Numbers sort largest first on the first click: the busiest table is what one looks for.
      const descending = choice.key === column.key ? !choice.descending : Boolean(column.numeric);
      sortChoices.set(id, { key: column.key, descending });
      table.replaceWith(sortableTable({ id, caption, columns, rows, initialSort, groups, limit }));
    });
    th.append(button);
    head.append(th);
  }

  const sorted = [...rows].sort(comparing(choice));
  const most = limit === undefined || shownWhole.has(id) ? Infinity : limit;
  let drawn = 0;
  for (const group of groups ?? [null]) {
    const members = group === null ? sorted : sorted.filter((row) => row.group === group.id);
    if (group !== null && members.length === 0) continue;
    const body = table.createTBody();
    if (group !== null) groupHeading(body, group, members.length, columns.length);
    for (const row of members.slice(0, most)) {
      const tr = body.insertRow();
      tr.dataset.row = row.id;
      for (const column of columns) tr.append(cell(column, row.cells[column.key]));
      drawn += 1;
    }
  }
  if (drawn < rows.length) {
    showWhole(table, drawn, rows.length, columns.length, () => {
      shownWhole.add(id);
      table.replaceWith(sortableTable({ id, caption, columns, rows, initialSort, groups, limit }));
    });
  }
  return table;
}

// The foot of a table drawn in part: how many of its rows are drawn, and a button to draw all.
function showWhole(table, drawn, total, span, drawAll) {
  const td = table.createTFoot().insertRow().insertCell();
  td.colSpan = span;
  td.className = "more";
  td.dataset.drawn = String(drawn);
  td.dataset.total = String(total);
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = `Show all ${formatNumber(total)} rows`;
  button.addEventListener("click", drawAll);
  td.append(`${formatNumber(drawn)} of ${formatNumber(total)} rows drawn, the first in the order chosen above. `, button);
}

// A group's first row: its label across every column, and how many rows it holds. The
// group's id is on its body (data-group; data-ungrouped for the rows of no group).
function groupHeading(body, group, count, span) {
  if (group.id === null) body.dataset.ungrouped = "";
  else body.dataset.group = group.id;
  const tr = body.insertRow();
  tr.className = "group-heading";
  const th = document.createElement("th");
  th.scope = "rowgroup";
  th.colSpan = span;
  th.append(group.label);
  const note = document.createElement("span");
  note.className = "note";
  note.textContent = `${count} ${count === 1 ? "row" : "rows"}`;
  th.append(note);
  tr.append(th);
}

function cell(column, { value, text, href, error }) {
  const td = document.createElement("td");
  td.dataset.column = column.key;
  td.dataset.value = value === null ? "" : String(value);
  if (column.numeric) td.className = "numeric";
  const shown = text ?? (typeof value === "string" ? value : formatNumber(value));
  if (error) {
    td.classList.add("failed");
    td.title = error;
    td.textContent = "failed";
  } else if (href) {
    const link = document.createElement("a");
    link.href = href;
    link.textContent = shown;
    td.append(link);
  } else {
    td.textContent = shown;
    if (shown === NO_VALUE) td.title = "no data in this range";
  }
  return td;
}

// Cells without a value go last whichever the direction.
function comparing({ key, descending }) {
  return (a, b) => {
    const x = a.cells[key].value;
    const y = b.cells[key].value;
    if (x === null || y === null) return (x === null) - (y === null);
    const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
    return descending ? -order : order;
  };
}
