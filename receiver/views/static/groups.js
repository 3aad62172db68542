// The chart groups of a page: load every series of every chart, then draw them as
// sections of figures.

import { chartFigure } from "./chart.js";
import { countUnit } from "./format.js";
import { loadSeries } from "./load.js";

export async function loadGroups(ctx, groups, prefix, service, endpoint) {
  return Promise.all(groups.map(async (group) => {
    const charts = await Promise.all(group.charts.map(async (chart) => {
      // Series whose metric the rules do not define are left out, and so is a chart left empty.
      const series = await Promise.all(chart.series.map(async ([suffix, label]) => {
        const result = await loadSeries(ctx, prefix + suffix, service, endpoint);
        if (result.undefinedMetric) return null;
        const unit = ctx.catalog.get(result.metric).unit;
        return { ...result, label, unit: chart.counts ? countUnit(unit, ctx.window.stepS) : unit };
      }));
      const defined = series.filter((item) => item !== null);
      return defined.length === 0 ? null : { id: chart.id, title: chart.title, window: ctx.window, series: defined };
    }));
    return { title: group.title, charts: charts.filter((chart) => chart !== null) };
  }));
}

// One section of figures per group; drawCharts draws them once they are in the page.
export function groupSections(groups) {
  return groups
    .filter((group) => group.charts.length > 0)
    .map((group) => {
      const section = document.createElement("section");
      section.className = "group";
      const heading = document.createElement("h2");
      heading.textContent = group.title;
      const grid = document.createElement("div");
      grid.className = "charts";
      grid.append(...group.charts.map(chartFigure));
      section.append(heading, grid);
      return section;
    });
}
