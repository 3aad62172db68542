// The three pages. Each view loads everything it shows (load), then draws it at once
// (draw), so a refresh swaps the page in one step instead of flickering.

import { fetchEntities, fetchSummary } from "./api.js";
import { headroomSection, loadHeadroom } from "./ceiling.js";
import { drawCharts } from "./chart.js";
import { element, emptyState, scrolling } from "./dom.js";
import { loadAccountFeatures, loadTableFeatures, tablesAndIndexes } from "./features.js";
import { groupSections, loadGroups } from "./groups.js";
import { loadCells, sortableTable, summaryCells } from "./grid.js";
import { describe, inventoryFacts, inventorySection, loadInventory } from "./inventory.js";
import {
  ACCOUNT_COLUMNS, ACCOUNT_GROUPS, ENDPOINT_PREFIX, SERVICE_PREFIX, TABLE_COLUMNS, TABLE_GROUPS,
  TABLE_ROWS_AT_FIRST,
} from "./layout.js";
import { loadOperations, operationsSection } from "./operations.js";
import { PIPELINE_LAYER } from "./pipeline.js";
import { hrefFor } from "./routes.js";
import { groupOf, passes, rowTags, tagControls, tagGroups, tagIndex } from "./tags.js";
import { loadThrottling, throttlingSection } from "./throttling.js";

const SERVICE_PREFIX_NAME = "aws-dynamodb::";
// Other rule packs (S3, API Gateway ...) add services of their own layers: not ours to chart.
const LAYER = "AWS_DYNAMODB";
// What the region column and switch call a table's regions merged.
const ALL_REGIONS = "all regions";

async function dynamodbServices(signal) {
  return (await fetchEntities(signal)).filter((service) => service.layer === LAYER);
}

// "aws-dynamodb::123456789012" → "123456789012"; a name of another shape is kept.
export function accountName(service) {
  return service.startsWith(SERVICE_PREFIX_NAME) ? service.slice(SERVICE_PREFIX_NAME.length) : service;
}

// What a page shows beyond its fixed groups, in page order after them: every operation, why
// throttled, and the panels of what only some tables use. Each part is null or an empty
// list when it has nothing to show.
async function loadInDepth(ctx, scope, operationOptions, features) {
  const [operations, throttling, featureGroups] = await Promise.all([
    loadOperations(ctx, scope, operationOptions),
    loadThrottling(ctx, scope),
    features,
  ]);
  return { operations, throttling, featureGroups };
}

// `inventory`: what the table inventory adds to a table page's panels (inventory.js inventoryFacts).
function inDepthSections({ operations, throttling, featureGroups }, inventory = {}) {
  return [operationsSection(operations), throttlingSection(throttling, inventory), ...groupSections(featureGroups)]
    .filter((section) => section !== null);
}

export const accountsView = {
  title: () => "Accounts",

  async load(ctx) {
    const all = await fetchEntities(ctx.signal);
    // The pipeline's services (the metric streams' own metrics) are not accounts: the Pipeline page shows them.
    const pipelines = all.filter((service) => service.layer === PIPELINE_LAYER).length;
    const accounts = await Promise.all(all.filter((service) => service.layer === LAYER).map(async (service) => ({
      service,
      cells: await loadCells(ctx, ACCOUNT_COLUMNS, SERVICE_PREFIX, service.name),
    })));
    return { accounts, pipelines };
  },

  draw(main, { accounts, pipelines }, ctx) {
    main.append(element("h1", "", "Accounts"));
    if (accounts.length === 0) {
      main.append(emptyState("accounts"), pipelineNote(pipelines, ctx.route.range));
      return;
    }
    const columns = [
      { key: "account", label: "Account" },
      { key: "tables", label: "Tables", numeric: true },
      { key: "indexes", label: "Indexes", numeric: true },
      ...ACCOUNT_COLUMNS.map((column) => ({ ...column, numeric: true })),
    ];
    const rows = accounts.map(({ service, cells }) => {
      const endpoints = tablesAndIndexes(service.endpoints);
      const indexes = endpoints.filter((name) => name.includes("/")).length;
      return {
        id: service.name,
        cells: {
          account: {
            value: service.name,
            text: accountName(service.name),
            href: hrefFor({ page: "account", service: service.name, range: ctx.route.range }),
          },
          tables: { value: endpoints.length - indexes },
          indexes: { value: indexes },
          ...cells,
        },
      };
    });
    main.append(scrolling(sortableTable({
      id: "accounts", caption: "Every account that sent metrics in the retention window", columns, rows,
      initialSort: { key: "account", descending: false },
    })), pipelineNote(pipelines, ctx.route.range));
  },
};

// Where the metric stream itself is: how it delivers, what it costs, which minutes are complete.
function pipelineNote(count, range) {
  const note = element("p", "pipeline-note");
  note.dataset.pipelines = String(count);
  const link = element("a", "", "the Pipeline page");
  link.href = hrefFor({ page: "pipeline", range });
  const whose = count === 0 ? "" : ` (${count} ${count === 1 ? "account reports it" : "accounts report it"})`;
  note.append(`How the metric stream delivers${whose}, what it costs and which minutes are complete: `, link, ".");
  return note;
}

export const accountView = {
  title: (route) => `Account ${accountName(route.service)}`,

  async load(ctx) {
    const { service } = ctx.route;
    const scope = { prefix: SERVICE_PREFIX, service };
    // The summary is asked first: at 2,000 tables it is the longest of the page's requests.
    const [summary, services, groups, inDepth, inventory] = await Promise.all([
      loadSummary(ctx, service),
      dynamodbServices(ctx.signal),
      loadGroups(ctx, ACCOUNT_GROUPS, SERVICE_PREFIX, service),
      loadInDepth(ctx, scope, { withPercentiles: false }, loadAccountFeatures(ctx, SERVICE_PREFIX, service)),
      loadInventory(ctx, service),
    ]);
    const entry = services.find((candidate) => candidate.name === service);
    // With tags known, each row has its table's and the address's tag filter applies.
    const tags = tagIndex(inventory);
    const rows = (entry ? tableRows(entry) : []).map((row) => ({
      ...row, tags: tags === null ? {} : rowTags(tags, row.endpoint, row.single || row.narrowed ? row.region : null),
    }));
    const listed = tags === null ? rows : rows.filter((row) => passes(row.tags, ctx.route));
    // Every row's numbers come from the one summary of the account's endpoints.
    const named = new Map(
      (summary.body?.figures ?? []).map(({ metric, reduce }, index) => [metric, { index, reduce }]),
    );
    const tables = listed.map((row) => {
      const figures = summary.body?.endpoints?.[row.endpoint];
      const chosen = row.narrowed ? figures?.regions?.[row.region] : figures?.merged;
      return { ...row, cells: summaryCells(TABLE_COLUMNS, ENDPOINT_PREFIX, chosen, named, summary.error) };
    });
    return { groups, tables, inDepth, tags, total: rows.length };
  },

  draw(main, { groups, tables, inDepth, tags, total }, ctx) {
    const { service, range, tag, tagValue, groupBy } = ctx.route;
    main.append(element("h1", "", `Account ${accountName(service)}`));
    const sections = groupSections(groups);
    const list = element("section", "group");
    list.append(element("h2", "", "Tables and indexes"));
    const filtered = tags !== null && tag !== undefined;
    const chosen = tagValue === undefined ? `the tag ${tag}` : `the tag ${tag} = ${tagValue}`;
    if (tags !== null) list.append(tagControls(tags, ctx.route));
    if (tables.length === 0 && filtered && total > 0) {
      const none = element("p", "empty", `No table or index of the account has ${chosen}.`);
      none.dataset.empty = "tagged";
      list.append(none);
    } else if (tables.length === 0) {
      list.append(emptyState("tables"));
    } else {
      const columns = [
        { key: "endpoint", label: "Table / index" },
        { key: "region", label: "Region" },
        ...TABLE_COLUMNS.map((column) => ({ ...column, numeric: true })),
      ];
      // A row of one region of a multi-region table is "<endpoint>@<region>", so ids stay unique.
      const grouping = tags === null ? null : tagGroups(tags, groupBy);
      const rows = tables.map(({ endpoint, region, narrowed, single, cells, tags: tagged }) => ({
        id: narrowed ? `${endpoint}@${region}` : endpoint,
        group: grouping === null ? undefined : groupOf(tagged, groupBy),
        cells: {
          endpoint: {
            value: endpoint,
            href: hrefFor({ page: "table", service, endpoint, range, region: narrowed ? region : undefined }),
          },
          // The merged row of a multi-region table sorts before its regions.
          region: single || narrowed ? { value: region } : { value: "", text: ALL_REGIONS },
          ...cells,
        },
      }));
      const caption = filtered
        ? `The tables and global secondary indexes of the account with ${chosen}, per region (${tables.length} of ${total} rows)`
        : "Each table and global secondary index of the account, per region";
      list.append(scrolling(sortableTable({
        id: "tables", caption, columns, rows, initialSort: { key: "endpoint", descending: false },
        limit: TABLE_ROWS_AT_FIRST, ...(grouping === null ? {} : { groups: grouping }),
      })));
    }
    // The table first: it is where one goes from here.
    main.append(list, ...sections, ...inDepthSections(inDepth));
    drawCharts(main);
  },
};

export const tableView = {
  title: (route) => `${endpointTitle(route.endpoint)}${route.region ? ` in ${route.region}` : ""}`,

  // Every series is narrowed to the route's region, if it names one (loadSeries).
  async load(ctx) {
    const { service, endpoint } = ctx.route;
    const scope = { prefix: ENDPOINT_PREFIX, service, endpoint };
    const account = accountEntry(ctx, service);
    const [groups, inDepth, entry, inventory, headroom] = await Promise.all([
      loadGroups(ctx, TABLE_GROUPS, ENDPOINT_PREFIX, service, endpoint),
      // GetRecords' latency is in the stream panel.
      loadInDepth(
        ctx, scope, { withPercentiles: true, skip: ["get_records"] },
        loadTableFeatures(ctx, ENDPOINT_PREFIX, service, endpoint, account),
      ),
      account,
      loadInventory(ctx, service),
      loadHeadroom(ctx, ENDPOINT_PREFIX, service, endpoint),
    ]);
    return { groups, inDepth, regions: entry?.regions?.[endpoint] ?? [], inventory, headroom };
  },

  draw(main, { groups, inDepth, regions, inventory, headroom }, ctx) {
    const { service, region } = ctx.route;
    const heading = element("h1", "", endpointTitle(ctx.route.endpoint));
    // Where the values come from: the chosen region, the table's only one, or all of them.
    const from = region ?? (regions.length === 1 ? regions[0] : regions.length > 1 ? ALL_REGIONS : null);
    heading.append(element("span", "subtitle", `account ${accountName(service)}${from ? ` · ${from}` : ""}`));
    main.append(heading);
    // A table that reports from one region has nothing to switch, unless the address names another.
    if (regions.length > 1 || (region !== undefined && !regions.includes(region))) {
      main.append(regionSwitch(ctx.route, regions));
    }
    // What the table is, then its capacity and the headroom left under its ceilings.
    const described = describe(inventory, ctx.route.endpoint, region, regions);
    const facts = inventoryFacts(described, ctx.route.endpoint);
    const [capacity, ...others] = groups;
    main.append(
      ...[inventorySection(described, ctx.route)].filter((section) => section !== null),
      ...groupSections([capacity]),
      ...[headroomSection(headroom, facts)].filter((section) => section !== null),
      ...groupSections(others),
      ...inDepthSections(inDepth, facts),
    );
    drawCharts(main);
  },
};

// The account's entry of /api/v1/entities, or null when there is none or it failed to load
// (the banner names the failure; the table's own series still load).
async function accountEntry(ctx, service) {
  try {
    return (await fetchEntities(ctx.signal)).find((candidate) => candidate.name === service) ?? null;
  } catch (error) {
    if (error.name === "AbortError") throw error;
    ctx.errors.push(error.message);
    return null;
  }
}

// The account's /api/v1/summary as { body } or, when it failed, { error } (its cells say so and
// the banner names it: the rest of the page still loads).
async function loadSummary(ctx, service) {
  try {
    return { body: await fetchSummary(service, ctx.window, ctx.signal), error: null };
  } catch (error) {
    if (error.name === "AbortError") throw error;
    ctx.errors.push(error.message);
    return { body: null, error: error.message };
  }
}

// The rows of the account's table of tables: a table or index that reports from one region is
// one row naming that region; one that reports from several is a row of all its regions
// merged, then a row for each region (`narrowed`: its values are that region's alone).
function tableRows(entry) {
  return tablesAndIndexes(entry.endpoints).flatMap((endpoint) => {
    const regions = entry.regions?.[endpoint] ?? [];
    if (regions.length <= 1) return [{ endpoint, region: regions[0] ?? null, narrowed: false, single: true }];
    return [
      { endpoint, region: null, narrowed: false, single: false },
      ...regions.map((region) => ({ endpoint, region, narrowed: true, single: false })),
    ];
  });
}

// Links to the table page for all regions merged and for each region; the chosen one is current.
function regionSwitch(route, regions) {
  const nav = element("nav", "regions");
  nav.setAttribute("aria-label", "Region");
  const choices = [...new Set([...regions, ...(route.region ? [route.region] : [])])].sort();
  for (const region of [undefined, ...choices]) {
    const link = element("a", "", region ?? ALL_REGIONS);
    link.href = hrefFor({ ...route, region });
    link.dataset.region = region ?? "";
    if (region === route.region) link.setAttribute("aria-current", "true");
    nav.append(link);
  }
  return nav;
}

// An index is the endpoint "<table>/<index>".
function endpointTitle(endpoint) {
  const slash = endpoint.indexOf("/");
  return slash < 0 ? `Table ${endpoint}` : `Index ${endpoint.slice(slash + 1)} of table ${endpoint.slice(0, slash)}`;
}

export const unknownView = {
  title: () => "Not found",
  async load() {
    return null;
  },
  draw(main) {
    main.append(element("h1", "", "No such page"));
    const back = element("p", "");
    const link = element("a", "", "Go to the accounts");
    link.href = "#/";
    back.append("This address names no page of the dashboard. ", link, ".");
    main.append(back);
  },
};
