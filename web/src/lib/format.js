// Numbers for people: every figure on the page goes through one of these, so units, rounding
// and "no value" read the same everywhere. `locale` is a parameter so tests are deterministic.

const DASH = "—";

/** @param {number | null | undefined} n */
const isNum = (n) => typeof n === "number" && Number.isFinite(n);
const isDecimalString = (s) => typeof s === "string" && /^-?\d{1,20}(\.\d{1,10})?$/.test(s);

/** 1234567 → "1,234,567"; 12345.6 → "12,346". */
export function formatCount(n, locale = undefined) {
  if (!isNum(n)) return DASH;
  return new Intl.NumberFormat(locale, { maximumFractionDigits: 0 }).format(n);
}

/** Large counts in compact form for tight cards: 1234 → "1.2K", 15300000 → "15M". */
export function formatCompact(n, locale = undefined) {
  if (!isNum(n)) return DASH;
  if (Math.abs(n) < 10_000) return formatCount(n, locale);
  return new Intl.NumberFormat(locale, { notation: "compact", maximumFractionDigits: 1 }).format(n);
}

/** A per-minute rate: "0/min", "37/min", "1.2K/min". */
export function formatPerMinute(n, locale = undefined) {
  if (!isNum(n)) return DASH;
  return `${formatCompact(n, locale)}/min`;
}

/** Milliseconds: "0.87 ms", "12 ms", "1.25 s". */
export function formatMs(ms, locale = undefined) {
  if (!isNum(ms)) return DASH;
  if (ms < 10) return `${new Intl.NumberFormat(locale, { maximumFractionDigits: 2 }).format(ms)} ms`;
  if (ms < 1000) return `${new Intl.NumberFormat(locale, { maximumFractionDigits: 0 }).format(ms)} ms`;
  return `${new Intl.NumberFormat(locale, { maximumFractionDigits: 2 }).format(ms / 1000)} s`;
}

/** Seconds of uptime: "42 s", "5 min 3 s", "3 h 12 min", "2 d 4 h". Two units at most. */
export function formatDuration(seconds) {
  if (!isNum(seconds) || seconds < 0) return DASH;
  const s = Math.floor(seconds);
  const units = [
    ["d", 86_400],
    ["h", 3_600],
    ["min", 60],
    ["s", 1],
  ];
  const parts = [];
  let rest = s;
  for (const [name, size] of units) {
    const v = Math.floor(rest / size);
    rest -= v * size;
    if (v > 0 || (parts.length > 0 && parts.length < 2)) parts.push(`${v} ${name}`);
    if (parts.length === 2) break;
  }
  if (parts.length === 0) return "0 s";
  // "5 min 0 s" reads worse than "5 min".
  return parts.filter((p, i) => i === 0 || !p.startsWith("0 ")).join(" ");
}

/** Money in its currency: (1234.5, "TRY") → "₺1,234.50" (en) — the currency code decides. */
export function formatMoney(amount, currency, locale = undefined) {
  // The server sends money as exact decimal strings ("246.90"); Intl formats those without
  // passing through a binary float. Plain numbers are still accepted.
  if (!isNum(amount) && !isDecimalString(amount)) return DASH;
  try {
    return new Intl.NumberFormat(locale, { style: "currency", currency: currency || "TRY" }).format(amount);
  } catch {
    // An unknown currency code from the server still shows the amount.
    return `${new Intl.NumberFormat(locale, { maximumFractionDigits: 2 }).format(amount)} ${currency ?? ""}`.trim();
  }
}

/** 0-100 → "42 %"; null → "—". */
export function formatPercent(p, locale = undefined) {
  if (!isNum(p)) return DASH;
  return `${new Intl.NumberFormat(locale, { maximumFractionDigits: 0 }).format(p)} %`;
}

/** How long ago an RFC 3339 instant was, relative to `now` (ms): "just now", "3 min ago", "2 h ago", "5 d ago". */
export function formatAgo(iso, now = Date.now()) {
  if (!iso) return "never";
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return DASH;
  const s = Math.round((now - t) / 1000);
  if (s < 5) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3_600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3_600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}

/** Clock time of an RFC 3339 instant in the viewer's zone: "14:03:07". */
export function formatClock(iso, locale = undefined, timeZone = undefined) {
  const t = Date.parse(iso ?? "");
  if (!Number.isFinite(t)) return DASH;
  return new Intl.DateTimeFormat(locale, {
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hour12: false,
    timeZone,
  }).format(t);
}

export { DASH };
