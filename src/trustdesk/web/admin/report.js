// The "Отчёт" view: tickets per day (an SVG bar chart drawn by hand), median first
// response and resolution times, and the customers' ratings. GET /api/admin/report?days=N.

import { api } from "./api.js";
import { h, replaceChildren } from "./dom.js";
import { getLang, t } from "./i18n.js";
import { reportKbCard } from "./kb.js";
import { reportLabelsCard } from "./labels.js";

const PERIODS = [7, 30, 90];
const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    el.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return el;
}

/** 45 сек · 12 мин · 3 ч 20 мин · 2 д 4 ч */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  const u = (k) => t(`dur.${k}`);
  if (s < 60) return `${s} ${u("s")}`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} ${u("m")}`;
  const hTotal = Math.floor(s / 3600);
  if (hTotal < 24) {
    const rest = Math.round((s - hTotal * 3600) / 60);
    return rest ? `${hTotal} ${u("h")} ${rest} ${u("m")}` : `${hTotal} ${u("h")}`;
  }
  const d = Math.floor(s / 86400);
  const rh = Math.round((s - d * 86400) / 3600);
  return rh ? `${d} ${u("d")} ${rh} ${u("h")}` : `${d} ${u("d")}`;
}

/** 4.5 -> "4,5" (ru) / "4.5" (en) */
function fmt1(n) {
  const s = Number(n).toFixed(1);
  return getLang() === "en" ? s : s.replace(".", ",");
}

function dayDate(iso) {
  const [y, m, d] = iso.split("-").map(Number);
  return new Date(y, m - 1, d);
}

function shortDay(iso) {
  const d = dayDate(iso);
  return d.toLocaleDateString(getLang() === "en" ? "en-GB" : "ru-RU", { day: "numeric", month: "short" });
}

function longDay(iso) {
  const d = dayDate(iso);
  return d.toLocaleDateString(getLang() === "en" ? "en-GB" : "ru-RU", {
    weekday: "short",
    day: "numeric",
    month: "long",
  });
}

function niceMax(n) {
  if (n <= 4) return Math.max(1, n);
  const pow = 10 ** Math.floor(Math.log10(n));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * pow >= n) return step * pow;
  }
  return 10 * pow;
}

/** Tickets per day as an <svg> bar chart with a y axis, gridlines and date labels. */
function barChart(perDay, width) {
  const W = Math.max(280, Math.round(width || 760));
  const H = W < 500 ? 200 : 240;
  const pad = { l: 34, r: 8, t: 12, b: 28 };
  const n = perDay.length;
  const max = niceMax(Math.max(0, ...perDay.map((d) => d.tickets)));
  const ticks = max <= 4 ? max : 4;
  const plotW = W - pad.l - pad.r;
  const plotH = H - pad.t - pad.b;
  const slot = plotW / Math.max(1, n);
  const barW = Math.max(2, Math.min(34, slot * 0.68));
  const y = (v) => pad.t + plotH - (v / max) * plotH;
  const total = perDay.reduce((a, d) => a + d.tickets, 0);
  const root = svg("svg", {
    class: "bar-chart",
    viewBox: `0 0 ${W} ${H}`,
    role: "img",
    "aria-label": t("report.chartLabel", { n: total, days: n }),
  });
  const grid = svg("g", { class: "grid" });
  for (let i = 0; i <= ticks; i += 1) {
    const v = (max / ticks) * i;
    const yy = y(v);
    grid.append(
      svg("line", { x1: pad.l, x2: W - pad.r, y1: yy, y2: yy, class: i === 0 ? "axis" : "gridline" }),
      svg("text", { x: pad.l - 6, y: yy + 4, class: "tick", "text-anchor": "end" }, String(Math.round(v * 10) / 10)),
    );
  }
  root.append(grid);
  const bars = svg("g", { class: "bars" });
  const fits = Math.max(2, Math.floor(plotW / 58)); // date labels that fit side by side
  const labelEvery = Math.max(1, Math.ceil(n / fits));
  perDay.forEach((d, i) => {
    const cx = pad.l + slot * i + slot / 2;
    const top = y(d.tickets);
    const height = Math.max(0, pad.t + plotH - top);
    const g = svg("g", { class: `bar${d.tickets ? "" : " zero"}`, "data-date": d.date, "data-value": d.tickets });
    // A full-height invisible hit area so the tooltip works on empty days too.
    g.append(
      svg("rect", { class: "hit", x: pad.l + slot * i, y: pad.t, width: slot, height: plotH }),
      svg("rect", { class: "fill", x: cx - barW / 2, y: d.tickets ? top : pad.t + plotH - 1, width: barW, height: d.tickets ? height : 1, rx: Math.min(4, barW / 3) }),
      svg("title", null, `${longDay(d.date)}: ${t("report.ticketsN", { n: d.tickets })}`),
    );
    if (d.tickets && slot >= 16 && height > 14) {
      g.append(svg("text", { class: "value", x: cx, y: top - 4, "text-anchor": "middle" }, String(d.tickets)));
    }
    bars.append(g);
    const last = i === n - 1;
    if ((n - 1 - i) % labelEvery === 0 || (last && labelEvery === 1)) {
      bars.append(svg("text", { class: "xlabel", x: cx, y: H - 8, "text-anchor": "middle" }, last ? t("report.today") : shortDay(d.date)));
    }
  });
  root.append(bars);
  return root;
}

function ratingBars(counts, total) {
  const max = Math.max(1, ...[1, 2, 3, 4, 5].map((k) => counts[String(k)] || 0));
  return h(
    "ul",
    { class: "rating-bars", "aria-label": t("report.ratingDist") },
    [5, 4, 3, 2, 1].map((k) => {
      const n = counts[String(k)] || 0;
      const fill = h("span", { class: `rb-fill s${k}` });
      fill.style.width = `${(n / max) * 100}%`;
      const pct = total ? Math.round((n / total) * 100) : 0;
      return h(
        "li",
        { class: "rb-row", dataset: { score: String(k), count: String(n) } },
        h("span", { class: "rb-label" }, `${k} ★`),
        h("span", { class: "rb-track", "aria-hidden": "true" }, fill),
        h("span", { class: "rb-count" }, String(n), h("span", { class: "muted" }, ` · ${pct}%`)),
      );
    }),
  );
}

function waitSub(r, key) {
  const n = r.escalate_after_minutes || 0;
  return n > 0 ? t(key, { n }) : t("report.escalationOff");
}

function kpi(icon, label, value, sub, key) {
  return h(
    "div",
    { class: "kpi", dataset: { kpi: key } },
    h("span", { class: "kpi-icon", "aria-hidden": "true" }, icon),
    h("span", { class: "kpi-label" }, label),
    h("strong", { class: "kpi-value" }, value),
    sub ? h("span", { class: "kpi-sub muted" }, sub) : null,
  );
}

/**
 * Build the report into `main`. opts: {days, onDays(days), errorText(e)}
 */
export function buildReport(main, opts) {
  let days = PERIODS.includes(opts.days) ? opts.days : 30;
  let seq = 0;
  let observer = null;
  const body = h("div", { class: "report-body", "aria-live": "polite" });
  const buttons = PERIODS.map((d) =>
    h(
      "button",
      {
        type: "button",
        class: "filter",
        dataset: { days: String(d) },
        "aria-pressed": d === days ? "true" : "false",
        onclick: () => {
          if (d === days) return;
          days = d;
          opts.onDays(d);
          for (const b of buttons) b.setAttribute("aria-pressed", b.dataset.days === String(d) ? "true" : "false");
          load();
        },
      },
      t("report.days", { n: d }),
    ),
  );
  const refresh = h(
    "button",
    { type: "button", class: "btn ghost small", onclick: () => load(), "aria-label": t("report.refresh"), title: t("report.refresh") },
    "↻",
  );
  replaceChildren(
    main,
    h(
      "div",
      { class: "report" },
      h(
        "div",
        { class: "report-head" },
        h("h1", null, t("report.heading")),
        h("div", { class: "filters period", role: "group", "aria-label": t("report.period") }, buttons),
        refresh,
      ),
      body,
    ),
  );

  async function load() {
    const mine = ++seq;
    body.setAttribute("aria-busy", "true");
    if (!body.firstChild) replaceChildren(body, h("p", { class: "muted report-loading" }, t("list.loading")));
    let r;
    try {
      r = await api.report(days);
    } catch (e) {
      if (mine !== seq) return;
      body.removeAttribute("aria-busy");
      replaceChildren(body, h("p", { class: "form-error" }, opts.errorText(e)));
      return;
    }
    if (mine !== seq || !body.isConnected) return;
    body.removeAttribute("aria-busy");
    render(r);
  }

  function render(r) {
    const perDay = r.per_day || [];
    const avg = r.rating_average;
    const busiest = perDay.reduce((best, d) => (d.tickets > (best ? best.tickets : 0) ? d : best), null);
    const perDayAvg = perDay.length ? r.tickets / perDay.length : 0;
    const kpis = h(
      "div",
      { class: "kpis" },
      kpi("💬", t("report.tickets"), String(r.tickets), t("report.perDay", { n: fmt1(perDayAvg) }), "tickets"),
      kpi("⚡", t("report.firstResponse"), formatDuration(r.first_response_seconds_median), t("report.median"), "first-response"),
      kpi("✅", t("report.resolution"), formatDuration(r.resolution_seconds_median), t("report.median"), "resolution"),
      kpi(
        "⭐",
        t("report.rating"),
        avg === null || avg === undefined ? "—" : `${fmt1(avg)} / 5`,
        t("report.ratingsN", { n: r.ratings }),
        "rating",
      ),
      // Missed chats (actions/escalation.py): waits that reached N minutes, answered after.
      kpi("⏰", t("report.missed"), String(r.missed ?? 0), waitSub(r, "report.missedSub"), "missed"),
      kpi("🐢", t("report.answeredLate"), String(r.answered_late ?? 0), waitSub(r, "report.answeredLateSub"), "answered-late"),
    );
    const chartBox = h("div", { class: "chart-box" });
    const chartCard = h(
      "section",
      { class: "report-card chart-card", "aria-labelledby": "chart-heading" },
      h(
        "div",
        { class: "report-card-head" },
        h("h2", { id: "chart-heading" }, t("report.chart")),
        busiest ? h("span", { class: "muted" }, t("report.busiest", { day: longDay(busiest.date), n: busiest.tickets })) : null,
      ),
      chartBox,
    );
    const ratingCard = h(
      "section",
      { class: "report-card rating-dist", "aria-labelledby": "ratings-heading" },
      h("div", { class: "report-card-head" }, h("h2", { id: "ratings-heading" }, t("report.ratingDist"))),
      r.ratings
        ? [
            h(
              "div",
              { class: "rating-summary" },
              h("span", { class: "rating-big" }, fmt1(avg ?? 0)),
              h(
                "span",
                { class: "stars big", role: "img", "aria-label": t("info.ratingLabel", { n: fmt1(avg ?? 0) }) },
                [1, 2, 3, 4, 5].map((i) => {
                  const part = (avg ?? 0) - (i - 1);
                  const cls = part >= 0.75 ? " on" : part >= 0.25 ? " half" : "";
                  return h("span", { class: `star${cls}`, "aria-hidden": "true" }, "★");
                }),
              ),
              h("span", { class: "muted" }, t("report.ratingsN", { n: r.ratings })),
            ),
            ratingBars(r.rating_counts || {}, r.ratings),
          ]
        : h("p", { class: "muted" }, t("report.noRatings")),
    );
    replaceChildren(body, kpis, h("div", { class: "report-grid" }, chartCard, ratingCard, reportLabelsCard(r.labels), reportKbCard(days)));
    // Drawn at the size it is shown at, so its text stays readable on a phone too.
    let drawnAt = 0;
    const draw = () => {
      const w = chartBox.clientWidth;
      if (!w || Math.abs(w - drawnAt) < 24) return;
      drawnAt = w;
      const chart = barChart(perDay, w);
      replaceChildren(chartBox, r.tickets ? chart : h("div", { class: "chart-empty" }, chart, h("p", { class: "muted" }, t("report.noTickets"))));
    };
    draw();
    if (observer) observer.disconnect();
    if (typeof ResizeObserver !== "undefined") {
      observer = new ResizeObserver(() => {
        if (!chartBox.isConnected) {
          observer.disconnect();
          return;
        }
        draw();
      });
      observer.observe(chartBox);
    }
  }

  load();
}
