// Numbers, units and times as the dashboard shows them.

export const NO_VALUE = "—";

export function formatNumber(value) {
  if (value === null || !Number.isFinite(value)) return NO_VALUE;
  if (Number.isInteger(value)) return value.toLocaleString("en-US");
  const size = Math.abs(value);
  const digits =
    size >= 100
      ? { maximumFractionDigits: 1 }
      : size >= 1
        ? { maximumFractionDigits: 2 }
        : { maximumSignificantDigits: 3 };
  return value.toLocaleString("en-US", digits);
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
