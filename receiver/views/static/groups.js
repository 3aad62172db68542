// The chart groups of a page: load every series of every chart, then draw them as
// sections of figures.

import { chartFigure } from "./chart.js";
import { countUnit } from "./format.js";
import { loadSeries, reports } from "./load.js";

// A loaded series as a chart draws it: its label, and its unit per bucket for counts.
// `endpoint` marks a series of another entity than the page's (a region, an index).
export function chartSeries(ctx, result, label, counts, endpoint) {
  const unit = ctx.catalog.get(result.metric).unit;
  return { ...result, label, unit: counts ? countUnit(unit, ctx.window.stepS) : unit, endpoint };
}

// A chart lists its series as [metric suffix, legend label, entity?]; the entity, when
// given, replaces the page's endpoint. An `optional` group shows only what reports: a
// series without points is left out, and so is the group left without charts.
export async function loadGroups(ctx, groups, prefix, service, endpoint) {
  return Promise.all(groups.map(async (group) => {
    const charts = await Promise.all(group.charts.map(async (chart) => {
      // Series whose metric the rules do not define are left out, and so is a chart left empty.
      const series = await Promise.all(chart.series.map(async ([suffix, label, entity]) => {
        const result = await loadSeries(ctx, prefix + suffix, service, entity ?? endpoint);
        if (result.undefinedMetric || (group.optional && !reports(result))) return null;
        return chartSeries(ctx, result, label, chart.counts, entity);
      }));
      const defined = series.filter((item) => item !== null);
      return defined.length === 0 ? null : { id: chart.id, title: chart.title, window: ctx.window, series: defined };
    }));
    return { id: group.id, title: group.title, charts: charts.filter((chart) => chart !== null) };
  }));
}

// One section of figures per group; drawCharts draws them once they are in the page.
export function groupSections(groups) {
  return groups
    .filter((group) => group.charts.length > 0)
    .map((group) => {
      const section = document.createElement("section");
      section.className = "group";
      if (group.id) section.dataset.panel = group.id;
      const heading = document.createElement("h2");
      heading.textContent = group.title;
      section.append(heading, chartGrid(group.charts));
      return section;
    });
}

export function chartGrid(charts) {
  const grid = document.createElement("div");
  grid.className = "charts";
  grid.append(...charts.map(chartFigure));
  return grid;
}
