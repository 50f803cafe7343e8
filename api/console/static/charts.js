/*
 * The console's charts, drawn as SVG elements (no library, no canvas): a
 * funnel, grouped bars per key (route or country) and a stacked bar of
 * attempt outcomes. Colours come from console.css classes.
 */
import { s } from "./dom.js";

const STAGES = ["issued", "delivered", "verified"];

function pct(part, whole) {
  return whole > 0 ? `${Math.round((part / whole) * 100)} %` : "—";
}

/** Issued → delivered → verified as three centred bars narrowing like a funnel. */
export function funnelChart(total, { width = 560, title = "OTP funnel" } = {}) {
  const rowHeight = 34;
  const height = STAGES.length * rowHeight + 8;
  const max = Math.max(1, total.issued);
  const usable = width - 220;
  return s(
    "svg",
    { class: "chart funnel", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title },
    s("title", { text: title }),
    STAGES.map((stage, i) => {
      const value = total[stage];
      const barWidth = Math.max(2, (value / max) * usable);
      const y = 4 + i * rowHeight;
      const x = 90 + (usable - barWidth) / 2;
      return s(
        "g",
        { "data-stage": stage },
        s("text", { x: 0, y: y + 20, text: stage }),
        s("rect", { x, y, width: barWidth, height: rowHeight - 8, rx: 4, class: stage }),
        s("text", { x: 90 + usable + 10, y: y + 20, text: `${value}` }),
        s("text", { x: 90 + usable + 60, y: y + 20, class: "muted", text: i === 0 ? "" : pct(value, total.issued) }),
      );
    }),
  );
}

/** One group of three bars per row (route or country), scaled to the largest issued count. */
export function groupedBars(rows, { width = 560, title = "" } = {}) {
  const barHeight = 9;
  const groupHeight = STAGES.length * barHeight + 14;
  const labelWidth = 110;
  const valueWidth = 110;
  const usable = width - labelWidth - valueWidth;
  const max = Math.max(1, ...rows.map((row) => row.issued));
  const height = Math.max(1, rows.length) * groupHeight + 6;
  return s(
    "svg",
    { class: "chart bars", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title },
    s("title", { text: title }),
    rows.length === 0 ? s("text", { x: 0, y: 16, class: "muted", text: "nothing in this window" }) : null,
    rows.map((row, i) => {
      const y = 4 + i * groupHeight;
      return s(
        "g",
        { "data-key": row.key },
        s("text", { x: 0, y: y + 17, text: row.key }),
        STAGES.map((stage, j) =>
          s("rect", { x: labelWidth, y: y + j * barHeight, width: Math.max(row[stage] > 0 ? 2 : 0, (row[stage] / max) * usable), height: barHeight - 2, rx: 2, class: stage },
            s("title", { text: `${stage}: ${row[stage]}` }),
          ),
        ),
        s("text", { x: labelWidth + usable + 8, y: y + 11, text: `${row.issued} → ${row.delivered} → ${row.verified}` }),
        s("text", { x: labelWidth + usable + 8, y: y + 24, class: "muted", text: `${pct(row.verified, row.issued)} verified` }),
        s("line", { x1: 0, x2: width, y1: y + groupHeight - 5, y2: y + groupHeight - 5, class: "grid-line" }),
      );
    }),
  );
}

const OUTCOMES = ["sent", "failed", "timeout", "skipped"];

/** Attempt outcomes of one route as one stacked bar. */
export function outcomeBar(outcomes, { width = 260, title = "attempts by outcome" } = {}) {
  const total = OUTCOMES.reduce((sum, outcome) => sum + (outcomes[outcome] ?? 0), 0);
  let x = 0;
  return s(
    "svg",
    { class: "chart outcomes", width, height: 14, viewBox: `0 0 ${width} 14`, role: "img", "aria-label": title },
    s("title", { text: title }),
    s("rect", { x: 0, y: 0, width, height: 14, rx: 3, class: "bar-bg" }),
    total === 0
      ? null
      : OUTCOMES.map((outcome) => {
          const value = outcomes[outcome] ?? 0;
          if (value === 0) return null;
          const part = (value / total) * width;
          const bar = s("rect", { x, y: 0, width: part, height: 14, class: outcome }, s("title", { text: `${outcome}: ${value}` }));
          x += part;
          return bar;
        }),
  );
}
