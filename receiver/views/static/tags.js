// The account page's tag controls, from the tags the table inventory knows: a filter (one
// tag key, and one of its values or any) that lists only the tables and indexes with it, and
// a grouping of the rows under each value of one tag key, those without it last. Both live in
// the URL's hash (routes.js), so a reload or a shared link keeps them. An account whose
// tables have no tags known (or without the inventory) has no controls.

import { element } from "./dom.js";
import { tableName } from "./inventory.js";
import { hrefFor } from "./routes.js";

// The tags of each table of the account, by name, then by region; null when no table has one.
export function tagIndex(inventory) {
  if (inventory === null || !inventory.enabled) return null;
  const byTable = new Map();
  const values = new Map(); // tag key → Set of its values
  for (const entry of inventory.tables) {
    const tags = entry.tags ?? {};
    if (!byTable.has(entry.name)) byTable.set(entry.name, new Map());
    byTable.get(entry.name).set(entry.region, tags);
    for (const [key, value] of Object.entries(tags)) {
      if (!values.has(key)) values.set(key, new Set());
      values.get(key).add(value);
    }
  }
  return values.size === 0 ? null : { byTable, values };
}

// The tags of a row: those of its table in the row's region, or, for a row of every region
// merged (region null), of all its regions, the first region's value winning.
export function rowTags(index, endpoint, region) {
  const regions = index.byTable.get(tableName(endpoint));
  if (!regions) return {};
  if (region !== null && region !== undefined) return regions.get(region) ?? {};
  const merged = {};
  for (const name of [...regions.keys()].sort()) {
    for (const [key, value] of Object.entries(regions.get(name))) if (!Object.hasOwn(merged, key)) merged[key] = value;
  }
  return merged;
}

// Whether a row's tags pass the route's filter (every row does without one).
export function passes(tags, { tag, tagValue }) {
  if (tag === undefined) return true;
  if (!Object.hasOwn(tags, tag)) return false;
  return tagValue === undefined || tags[tag] === tagValue;
}

// The groups of the route's grouping, in order: each value of the key, then the rows without it.
export function tagGroups(index, groupBy) {
  if (groupBy === undefined) return null;
  const values = [...(index.values.get(groupBy) ?? [])].sort((a, b) => a.localeCompare(b));
  return [
    ...values.map((value) => ({ id: value, label: `${groupBy}: ${value}` })),
    { id: null, label: `without ${groupBy}` },
  ];
}

export function groupOf(tags, groupBy) {
  return Object.hasOwn(tags, groupBy) ? tags[groupBy] : null;
}

// The filter and grouping selects; choosing one puts it in the address, which loads the page again.
export function tagControls(index, route) {
  const controls = element("div", "tag-controls");
  controls.setAttribute("role", "group");
  controls.setAttribute("aria-label", "Tags");
  const keys = [...new Set([...index.values.keys(), ...[route.tag, route.groupBy].filter(Boolean)])]
    .sort((a, b) => a.localeCompare(b));
  const go = (change) => {
    window.location.hash = hrefFor({ ...route, ...change });
  };

  const tag = select("tag", "Tag", [["", "any table"], ...keys.map((key) => [key, key])], route.tag ?? "");
  tag.select.addEventListener("change", () => go({ tag: tag.select.value || undefined, tagValue: undefined }));
  controls.append(tag.label);
  if (route.tag !== undefined) {
    // An empty value is left out: "any value" finds its tables too.
    const known = [...(index.values.get(route.tag) ?? [])];
    const values = [...new Set([...known, ...(route.tagValue !== undefined ? [route.tagValue] : [])])]
      .filter((item) => item !== "")
      .sort((a, b) => a.localeCompare(b));
    const value = select("tag-value", "is", [["", "any value"], ...values.map((item) => [item, item])],
      route.tagValue ?? "");
    value.select.addEventListener("change", () => go({ tagValue: value.select.value || undefined }));
    controls.append(value.label);
  }
  const group = select("group-by", "Group by tag", [["", "no grouping"], ...keys.map((key) => [key, key])],
    route.groupBy ?? "");
  group.select.addEventListener("change", () => go({ groupBy: group.select.value || undefined }));
  controls.append(group.label);
  return controls;
}

function select(name, text, options, chosen) {
  const label = element("label", "", `${text} `);
  const box = element("select");
  box.name = name;
  for (const [value, shown] of options) {
    const option = element("option", "", shown);
    option.value = value;
    box.append(option);
  }
  box.value = chosen;
  label.append(box);
  return { label, select: box };
}
