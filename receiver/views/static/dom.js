// Small builders of page elements that the views share.

import { EMPTY_MESSAGE } from "./chart.js";

export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// Wide tables scroll sideways on a narrow screen instead of widening the page.
export function scrolling(table) {
  const box = element("div", "scroll");
  box.append(table);
  return box;
}

export function emptyState(what) {
  const note = element("p", "empty", EMPTY_MESSAGE);
  note.dataset.empty = what;
  return note;
}

// A section of the page: a heading, then its parts. `panel` names it for the tests and styles.
export function panelSection(panel, title, ...parts) {
  const section = element("section", "group");
  section.dataset.panel = panel;
  section.append(element("h2", "", title), ...parts);
  return section;
}
