// Numbers, units and times as the dashboard shows them.

export const NO_VALUE = "—";

// The formats of value.toLocaleString("en-US", options), made once: toLocaleString builds a
// formatter on every call, which took a second for the 16,000 numbers of 2,000 tables.
const WHOLE = new Intl.NumberFormat("en-US");
const TENTHS = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });
const HUNDREDTHS = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });
const THREE_DIGITS = new Intl.NumberFormat("en-US", { maximumSignificantDigits: 3 });

export function formatNumber(value) {
  if (value === null || !Number.isFinite(value)) return NO_VALUE;
  if (Number.isInteger(value)) return WHOLE.format(value);
  const size = Math.abs(value);
  const format = size >= 100 ? TENTHS : size >= 1 ? HUNDREDTHS : THREE_DIGITS;
  return format.format(value);
}

export function formatValue(value, unit) {
  const number = formatNumber(value);
  if (number === NO_VALUE || !unit) return number;
  return unit === "%" ? `${number}%` : `${number} ${unit}`;
}

// Counts (requests, items, events) are per bucket: per minute or per hour.
export function countUnit(unit, stepS) {
  return `${unit} / ${stepS >= 3600 ? "h" : "min"}`;
}

const clock = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", hour12: false });
const day = new Intl.DateTimeFormat("en-GB", { weekday: "short", day: "numeric" });
const full = new Intl.DateTimeFormat("en-GB", {
  weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hour12: false,
});

export const formatClock = (seconds) => clock.format(new Date(seconds * 1000));
export const formatDay = (seconds) => day.format(new Date(seconds * 1000));
export const formatMoment = (seconds) => full.format(new Date(seconds * 1000));

// "UTC+02:00": the axis unit of local times.
export function timeZoneLabel(seconds) {
  const minutes = -new Date(seconds * 1000).getTimezoneOffset();
  const sign = minutes < 0 ? "−" : "+";
  const hh = String(Math.floor(Math.abs(minutes) / 60)).padStart(2, "0");
  const mm = String(Math.abs(minutes) % 60).padStart(2, "0");
  return `UTC${sign}${hh}:${mm}`;
}

const BYTE_UNITS = ["bytes", "KB", "MB", "GB", "TB", "PB"];

// 1536 → "1.5 KB": powers of 1,000, as the AWS console counts a table's size.
export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return NO_VALUE;
  let size = bytes;
  let unit = 0;
  while (Math.abs(size) >= 1000 && unit < BYTE_UNITS.length - 1) {
    size /= 1000;
    unit += 1;
  }
  return `${formatNumber(unit === 0 ? size : Number(size.toPrecision(3)))} ${BYTE_UNITS[unit]}`;
}

// How long ago an epoch second was, from `nowMs`: "just now", "4 min ago", "3 h ago", "2 days ago".
export function formatAgo(seconds, nowMs = Date.now()) {
  const minutes = Math.floor((nowMs / 1000 - seconds) / 60);
  if (minutes < 1) return "just now";
  if (minutes < 90) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.round(hours / 24)} days ago`;
}

const date = new Intl.DateTimeFormat("en-GB", { day: "numeric", month: "short", year: "numeric" });

// "3 Mar 2025": a day long past, such as when a table was created.
export const formatDate = (seconds) => date.format(new Date(seconds * 1000));
