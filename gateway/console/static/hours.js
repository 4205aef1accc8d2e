// Work hours (勤務情報): one school's sessions in one month with active and idle minutes
// (GET /api/v1/reports/hours), a CSV download of the same, and per-teacher totals.
// Officers and CIOs of a school see only it; board-level officers and admins name the school.

import { get, withQuery } from "./api.js";
import { el, flash } from "./dom.js";
import { has, t } from "./i18n.js";

let me = null;
let bound = false;

const $ = (id) => document.getElementById(id);

function thisMonth() {
  const now = new Date();
  return `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, "0")}`;
}

export function mount(who) {
  me = who;
  const form = $("hours-filter");
  const school = form.elements.school;
  school.value = me.school ?? school.value;
  school.readOnly = Boolean(me.school);
  if (!form.elements.month.value) form.elements.month.value = thisMonth();
  if (!bound) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      load();
    });
    form.addEventListener("input", link);
    bound = true;
  }
  link();
  if (school.value) load();
}

export function unmount() {}

function query() {
  const data = new FormData($("hours-filter"));
  return { school: data.get("school")?.trim(), month: data.get("month"),
    user: data.get("user")?.trim() };
}

function link() {
  const q = query();
  const csv = $("hours-csv");
  csv.href = withQuery("/api/v1/reports/hours", { ...q, format: "csv" });
  csv.download = `work-hours-${q.school || "school"}-${q.month || "month"}.csv`;
  csv.hidden = !(q.school && q.month);
}

async function load() {
  let data;
  try {
    data = await get(withQuery("/api/v1/reports/hours", query()));
  } catch (error) {
    flash(error);
    return;
  }
  $("hours-table").querySelector("tbody").replaceChildren(...data.sessions.map(row));
  $("hours-empty").hidden = data.sessions.length > 0;
  $("hours-totals").replaceChildren(...data.totals.map((x) => el("li", {},
    t("hours.total", x.user, x.sessions, x.active_minutes, x.idle_minutes))));
}

function local(iso) {
  return iso ? iso.slice(0, 16).replace("T", " ") : t("hours.notEnded");
}

function row(w) {
  return el("tr", { "data-session": w.session },
    el("td", {}, w.user), el("td", {}, w.name), el("td", {}, local(w.start)),
    el("td", {}, local(w.end)),
    el("td", { class: "num" }, String(w.active_minutes)),
    el("td", { class: "num" }, String(w.idle_minutes)),
    el("td", {}, has(`hours.end.${w.ended_by}`) ? t(`hours.end.${w.ended_by}`) : w.ended_by),
    el("td", { class: "mono" }, w.session));
}
