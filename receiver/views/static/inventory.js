// What a table is, as the receiver's table inventory last described it (GET /api/v1/tables):
// its capacity mode, class, size, ceilings, warm throughput, indexes, settings and tags. The
// table page shows it in a card at the top; without the inventory, one line says how to turn
// it on. The entry of one region describes a table: a table page of all regions merged asks
// for one when the table has several.

import { fetchTables } from "./api.js";
import { ceilingOf, ceilingWords, warmWords } from "./ceiling.js";
import { element, scrolling } from "./dom.js";
import { formatAgo, formatBytes, formatDate, formatMoment, formatNumber, NO_VALUE } from "./format.js";
import { sortableTable } from "./grid.js";
import { hrefFor } from "./routes.js";

export const ON_DEMAND = "PAY_PER_REQUEST";

const BILLING_MODES = { PROVISIONED: "Provisioned", PAY_PER_REQUEST: "On-demand" };
const TABLE_CLASSES = { STANDARD: "Standard", STANDARD_INFREQUENT_ACCESS: "Standard-IA" };
const INDEX_KINDS = { global: "global secondary index", local: "local secondary index" };
// What a call that failed at the last poll leaves out, by the API's name.
const MISSING = {
  DescribeTable: "the description",
  ListTagsOfResource: "tags",
  DescribeTimeToLive: "time to live",
  DescribeContinuousBackups: "point-in-time recovery",
  DescribeContributorInsights: "Contributor Insights",
  GetInsightRuleReport: "most throttled keys",
  DescribeLimits: "account limits",
};
const SIX_HOURS = "DynamoDB refreshes these about every six hours";

// The account's inventory: { enabled, lastPoll, tables }, or null when it could not be loaded
// (the banner names the failure; the rest of the page loads without it).
export async function loadInventory(ctx, service) {
  try {
    const body = await fetchTables(service, ctx.signal);
    return { enabled: Boolean(body.inventory.enabled), lastPoll: body.inventory.last_poll ?? null, tables: body.tables };
  } catch (error) {
    if (error.name === "AbortError") throw error;
    ctx.errors.push(error.message);
    return null;
  }
}

// "GameScores/TopScores" → "GameScores".
export function tableName(endpoint) {
  const slash = endpoint.indexOf("/");
  return slash < 0 ? endpoint : endpoint.slice(0, slash);
}

// Which entry describes the page's table: the chosen region's, else the only one, else the
// one of the only region the table reports from. `regions`: where its metrics come from.
// state: "failed" (not loaded), "off", "unknown" (not polled yet), "regions" (one to choose)
// or "known".
export function describe(inventory, endpoint, region, regions) {
  if (inventory === null) return { state: "failed" };
  if (!inventory.enabled) return { state: "off" };
  const entries = inventory.tables.filter((entry) => entry.name === tableName(endpoint));
  const found = (entry) => (entry ? { state: "known", entry } : { state: "unknown", lastPoll: inventory.lastPoll, region });
  if (region !== undefined) return found(entries.find((entry) => entry.region === region));
  if (entries.length <= 1) return found(entries[0]);
  const reporting = regions.length === 1 ? entries.find((entry) => entry.region === regions[0]) : undefined;
  return reporting ? found(reporting) : { state: "regions", entries };
}

// What the other panels of the page take from the entry: the endpoint's ceiling, whether the
// table is on demand (in every region, on a page of them all), and its most throttled keys
// (a table's own page only).
export function inventoryFacts(described, endpoint) {
  const entry = described.state === "known" ? described.entry : null;
  const entries = described.state === "regions" ? described.entries : entry === null ? [] : [entry];
  const topKeys = entry?.top_keys ?? null;
  return {
    ceiling: ceilingOf(entry, endpoint),
    onDemand: entries.length > 0 && entries.every((each) => each.billing_mode === ON_DEMAND),
    topKeys: topKeys && !endpoint.includes("/") && (topKeys.keys ?? []).length > 0 ? topKeys : null,
  };
}

export function inventorySection(described, route) {
  if (described.state === "failed") return null;
  if (described.state === "off") {
    return note("off", [
      "The table inventory is off: start the receiver with ", code("--inventory REGION"), " (or ",
      code("RECEIVER_INVENTORY=REGION"), ") to see here what each table is — capacity mode, ceilings, indexes, tags.",
    ]);
  }
  if (described.state === "unknown") {
    const where = described.region ? ` in ${described.region}` : "";
    const last = described.lastPoll === null ? "it has not finished a poll yet" : `its last poll was ${formatAgo(described.lastPoll)}`;
    return note("unknown", [
      `The inventory has not polled this table${where} yet: ${last}. It describes the tables of the regions `,
      code("--inventory"), " names.",
    ]);
  }
  if (described.state === "regions") {
    const links = described.entries.map(({ region }) => {
      const link = element("a", "", region);
      link.href = hrefFor({ ...route, region });
      return link;
    });
    return note("regions", [
      "The inventory describes this table in each of its regions: choose ",
      ...links.flatMap((link, index) => (index === 0 ? [link] : [index === links.length - 1 ? " or " : ", ", link])),
      ".",
    ]);
  }
  return card(described.entry, route);
}

function note(state, parts) {
  const line = element("p", "inventory-note");
  line.dataset.inventory = state;
  line.append(...parts);
  return line;
}

function code(text) {
  return element("code", "", text);
}

function card(entry, route) {
  const { endpoint } = route;
  const indexName = endpoint.includes("/") ? endpoint.slice(endpoint.indexOf("/") + 1) : null;
  const index = indexName === null ? null : entry.indexes.find((candidate) => candidate.name === indexName) ?? null;
  const section = element("section", "group about");
  section.dataset.panel = "inventory";
  section.dataset.region = entry.region;
  const heading = element("h2", "", indexName === null ? "What the table is" : "What the index is");
  const polled = element("time", "polled", `polled ${formatAgo(entry.updated)}`);
  polled.dateTime = new Date(entry.updated * 1000).toISOString();
  polled.title = formatMoment(entry.updated);
  heading.append(polled);
  section.append(heading);
  if (entry.deleted !== null && entry.deleted !== undefined) {
    const gone = element("p", "deleted",
      `This table was deleted: the inventory found it gone on ${formatMoment(entry.deleted)}. `
      + "Its metrics stay until they age out.");
    gone.setAttribute("role", "status");
    section.append(gone);
  }
  const facts = element("dl", "facts");
  facts.append(...(index === null && indexName !== null
    ? [fact("index", "Index", "not in the inventory's description of the table")]
    : index === null ? tableFacts(entry) : indexFacts(entry, index, endpoint, route)));
  section.append(facts);
  if (index === null && indexName === null && entry.indexes.length > 0) section.append(scrolling(indexTable(entry, route)));
  section.append(tagLine(entry.tags ?? {}));
  const problems = Object.entries(entry.problems ?? {});
  if (problems.length > 0) {
    const list = element("ul", "problems");
    list.append(...problems.map(([api, message]) => {
      const item = element("li", "", `${MISSING[api] ?? api} unavailable: ${message}`);
      item.dataset.api = api;
      return item;
    }));
    section.append(list);
  }
  return section;
}

// One fact: its label, its value and, quieter, where the value comes from.
function fact(key, label, value, detail) {
  const item = element("div", "fact");
  item.dataset.fact = key;
  const shown = element("dd", "");
  shown.append(...(Array.isArray(value) ? value : [value]));
  if (detail) {
    const quiet = element("span", "detail");
    quiet.append(...(Array.isArray(detail) ? detail : [detail]));
    shown.append(quiet);
  }
  item.append(element("dt", "", label), shown);
  return item;
}

function ceilingFacts(ceiling, shared) {
  return ["read", "write"].map((side) => {
    const { value, source } = ceilingWords(ceiling, side);
    return fact(`${side}-ceiling`, `${side === "read" ? "Read" : "Write"} ceiling`, value,
      shared ? `${source}, shared with the table` : source);
  });
}

function warmFact(warm, ceiling) {
  const status = warm?.status ? lower(warm.status) : null;
  return fact("warm-throughput", "Warm throughput", warmWords(ceiling) ?? "none known",
    status === "updating" ? "prewarming" : status);
}

function sizeFact(holder) {
  const items = holder.item_count === null ? NO_VALUE : `${formatNumber(holder.item_count)} items`;
  return fact("size", "Items and size", `${items} · ${formatBytes(holder.size_bytes)}`, SIX_HOURS);
}

function tableFacts(entry) {
  const ceiling = ceilingOf(entry, entry.name);
  const replicas = entry.replicas ?? [];
  const waiting = replicas.filter((replica) => replica.status && replica.status !== "ACTIVE");
  return [
    fact("billing-mode", "Capacity mode", BILLING_MODES[entry.billing_mode] ?? entry.billing_mode),
    ...ceilingFacts(ceiling, false),
    warmFact(entry.warm_throughput, ceiling),
    sizeFact(entry),
    fact("table-class", "Table class", TABLE_CLASSES[entry.table_class] ?? entry.table_class ?? NO_VALUE),
    fact("status", "Status", entry.status ? lower(entry.status) : NO_VALUE,
      entry.created ? `created ${formatDate(entry.created)}` : null),
    fact("ttl", "Time to live", ttlWords(entry.ttl)),
    fact("stream", "Stream", streamWords(entry.stream), entry.stream?.enabled && entry.stream.label ? `label ${entry.stream.label}` : null),
    fact("replicas", "Global table replicas",
      replicas.length === 0 ? "none" : replicas.map((replica) => replica.region).join(", "),
      waiting.length === 0 ? null : waiting.map((replica) => `${replica.region} ${lower(replica.status)}`).join(", ")),
    fact("point-in-time-recovery", "Point-in-time recovery", onOff(entry.point_in_time_recovery)),
    fact("deletion-protection", "Deletion protection",
      entry.deletion_protection === null || entry.deletion_protection === undefined
        ? NO_VALUE : entry.deletion_protection ? "on" : "off"),
    fact("contributor-insights", "Contributor Insights", onOff(entry.contributor_insights?.status ?? null),
      insightsDetail(entry.contributor_insights)),
  ];
}

function indexFacts(entry, index, endpoint, route) {
  const table = element("a", "", entry.name);
  table.href = hrefFor({ ...route, endpoint: entry.name });
  return [
    fact("kind", "Kind", INDEX_KINDS[index.kind] ?? index.kind, ["of table ", table]),
    fact("billing-mode", "Capacity mode", BILLING_MODES[entry.billing_mode] ?? entry.billing_mode, "the table's"),
    ...ceilingFacts(ceilingOf(entry, endpoint), index.kind === "local"),
    warmFact(index.warm_throughput ?? entry.warm_throughput, ceilingOf(entry, endpoint)),
    sizeFact(index),
    fact("status", "Status", index.status ? lower(index.status) : NO_VALUE),
  ];
}

// The table's indexes: kind, state, size and each one's ceilings (a local index shares the table's).
function indexTable(entry, route) {
  const columns = [
    { key: "index", label: "Index" },
    { key: "kind", label: "Kind" },
    { key: "status", label: "Status" },
    { key: "items", label: "Items", numeric: true },
    { key: "size", label: "Size", numeric: true },
    { key: "read", label: "Read ceiling", note: "units/s", numeric: true },
    { key: "write", label: "Write ceiling", note: "units/s", numeric: true },
  ];
  const side = (ceiling, name, local) => {
    const value = ceiling?.[name] ?? null;
    if (local) return { value: null, text: "the table's" };
    const source = ceiling?.[`${name}_source`];
    return { value, text: value === null ? NO_VALUE : `${formatNumber(value)} (${sourceShort(source)})` };
  };
  const rows = entry.indexes.map((index) => {
    const endpoint = `${entry.name}/${index.name}`;
    const local = index.kind === "local";
    const ceiling = local ? null : ceilingOf(entry, endpoint);
    return {
      id: index.name,
      cells: {
        index: local ? { value: index.name } : { value: index.name, href: hrefFor({ ...route, endpoint }) },
        kind: { value: index.kind },
        status: { value: index.status ? lower(index.status) : null },
        items: { value: index.item_count },
        size: { value: index.size_bytes, text: formatBytes(index.size_bytes) },
        read: side(ceiling, "read", local),
        write: side(ceiling, "write", local),
      },
    };
  });
  return sortableTable({
    id: "indexes", caption: "Its secondary indexes (a local index shares the table's capacity)", columns, rows,
    initialSort: { key: "index", descending: false },
  });
}

function tagLine(tags) {
  const line = element("div", "tags");
  line.append(element("span", "label", "Tags"));
  const keys = Object.keys(tags).sort((a, b) => a.localeCompare(b));
  if (keys.length === 0) {
    line.append(element("span", "none", "none"));
    return line;
  }
  const list = element("ul", "");
  list.append(...keys.map((key) => {
    const item = element("li", "tag");
    item.dataset.tagKey = key;
    item.append(element("span", "key", key), element("span", "value", tags[key]));
    return item;
  }));
  line.append(list);
  return line;
}

function sourceShort(source) {
  return { provisioned: "provisioned", on_demand_max: "on-demand max", account_table_max: "account max" }[source]
    ?? "source unknown";
}

function ttlWords(ttl) {
  if (!ttl || !ttl.status) return NO_VALUE;
  if (ttl.status === "ENABLED") return ttl.attribute ? ["on, attribute ", code(ttl.attribute)] : "on";
  return ttl.status === "DISABLED" ? "off" : lower(ttl.status);
}

function streamWords(stream) {
  if (!stream) return NO_VALUE;
  if (!stream.enabled) return "off";
  return stream.view_type ? `on, ${lower(stream.view_type).replaceAll("_", " ")}` : "on";
}

function insightsDetail(insights) {
  const rules = insights?.rules ?? [];
  return rules.length === 0 ? null : `${rules.length} rule${rules.length === 1 ? "" : "s"}`;
}

function onOff(status) {
  if (status === null || status === undefined) return NO_VALUE;
  return { ENABLED: "on", DISABLED: "off" }[status] ?? lower(status);
}

function lower(text) {
  return String(text).toLowerCase();
}
