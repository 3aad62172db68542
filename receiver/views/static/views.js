// The three pages. Each view loads everything it shows (load), then draws it at once
// (draw), so a refresh swaps the page in one step instead of flickering.

import { fetchEntities } from "./api.js";
import { drawCharts } from "./chart.js";
import { element, emptyState, scrolling } from "./dom.js";
import { loadAccountFeatures, loadTableFeatures, tablesAndIndexes } from "./features.js";
import { groupSections, loadGroups } from "./groups.js";
import { loadCells, sortableTable } from "./grid.js";
import {
  ACCOUNT_COLUMNS, ACCOUNT_GROUPS, ENDPOINT_PREFIX, SERVICE_PREFIX, TABLE_COLUMNS, TABLE_GROUPS,
} from "./layout.js";
import { loadOperations, operationsSection } from "./operations.js";
import { hrefFor } from "./routes.js";
import { loadThrottling, throttlingSection } from "./throttling.js";

const SERVICE_PREFIX_NAME = "aws-dynamodb::";
// Other rule packs (S3, API Gateway ...) add services of their own layers: not ours to chart.
const LAYER = "AWS_DYNAMODB";

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

function inDepthSections({ operations, throttling, featureGroups }) {
  return [operationsSection(operations), throttlingSection(throttling), ...groupSections(featureGroups)]
    .filter((section) => section !== null);
}

export const accountsView = {
  title: () => "Accounts",

  async load(ctx) {
    const services = await dynamodbServices(ctx.signal);
    return Promise.all(services.map(async (service) => ({
      service,
      cells: await loadCells(ctx, ACCOUNT_COLUMNS, SERVICE_PREFIX, service.name),
    })));
  },

  draw(main, accounts, ctx) {
    main.append(element("h1", "", "Accounts"));
    if (accounts.length === 0) {
      main.append(emptyState("accounts"));
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
    })));
  },
};

export const accountView = {
  title: (route) => `Account ${accountName(route.service)}`,

  async load(ctx) {
    const { service } = ctx.route;
    const scope = { prefix: SERVICE_PREFIX, service };
    const [services, groups, inDepth] = await Promise.all([
      dynamodbServices(ctx.signal),
      loadGroups(ctx, ACCOUNT_GROUPS, SERVICE_PREFIX, service),
      loadInDepth(ctx, scope, { withPercentiles: false }, loadAccountFeatures(ctx, SERVICE_PREFIX, service)),
    ]);
    const entry = services.find((candidate) => candidate.name === service);
    const endpoints = entry ? tablesAndIndexes(entry.endpoints) : [];
    const tables = await Promise.all(endpoints.map(async (endpoint) => ({
      endpoint,
      cells: await loadCells(ctx, TABLE_COLUMNS, ENDPOINT_PREFIX, service, endpoint),
    })));
    return { groups, tables, inDepth };
  },

  draw(main, { groups, tables, inDepth }, ctx) {
    const { service, range } = ctx.route;
    main.append(element("h1", "", `Account ${accountName(service)}`));
    const sections = groupSections(groups);
    const list = element("section", "group");
    list.append(element("h2", "", "Tables and indexes"));
    if (tables.length === 0) {
      list.append(emptyState("tables"));
    } else {
      const columns = [
        { key: "endpoint", label: "Table / index" },
        ...TABLE_COLUMNS.map((column) => ({ ...column, numeric: true })),
      ];
      const rows = tables.map(({ endpoint, cells }) => ({
        id: endpoint,
        cells: {
          endpoint: { value: endpoint, href: hrefFor({ page: "table", service, endpoint, range }) },
          ...cells,
        },
      }));
      list.append(scrolling(sortableTable({
        id: "tables", caption: "Each table and global secondary index of the account", columns, rows,
        initialSort: { key: "endpoint", descending: false },
      })));
    }
    // The table first: it is where one goes from here.
    main.append(list, ...sections, ...inDepthSections(inDepth));
    drawCharts(main);
  },
};

export const tableView = {
  title: (route) => endpointTitle(route.endpoint),

  async load(ctx) {
    const { service, endpoint } = ctx.route;
    const scope = { prefix: ENDPOINT_PREFIX, service, endpoint };
    const [groups, inDepth] = await Promise.all([
      loadGroups(ctx, TABLE_GROUPS, ENDPOINT_PREFIX, service, endpoint),
      // GetRecords' latency is in the stream panel.
      loadInDepth(
        ctx, scope, { withPercentiles: true, skip: ["get_records"] },
        loadTableFeatures(ctx, ENDPOINT_PREFIX, service, endpoint),
      ),
    ]);
    return { groups, inDepth };
  },

  draw(main, { groups, inDepth }, ctx) {
    const { service } = ctx.route;
    const heading = element("h1", "", endpointTitle(ctx.route.endpoint));
    heading.append(element("span", "subtitle", `account ${accountName(service)}`));
    main.append(heading, ...groupSections(groups), ...inDepthSections(inDepth));
    drawCharts(main);
  },
};

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
