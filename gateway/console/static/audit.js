// Audit search (GET /api/v1/audit), CSV / JSON Lines export links (GET /api/v1/audit/export)
// and the integrity status (GET /api/v1/audit/verify).

import { get, withQuery } from "./api.js";
import { el, flash, fmtTime } from "./dom.js";
import { t } from "./i18n.js";

let me = null;
let bound = false;

export function mount(who) {
  me = who;
  const form = document.getElementById("audit-filter");
  // A school-scoped officer sees their school only; the gateway enforces it either way.
  form.querySelector(".school-filter").hidden = Boolean(me.school);
  if (!bound) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      search();
    });
    form.addEventListener("input", links);
    bound = true;
  }
  links();
  search();
  verify();
}

export function unmount() {}

/** datetime-local is the browser's local time; the API wants an instant with its offset. */
function instant(value) {
  if (!value) return "";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? "" : date.toISOString();
}

function filters() {
  const data = new FormData(document.getElementById("audit-filter"));
  return {
    user: data.get("user")?.trim(), school: me.school ? "" : data.get("school")?.trim(),
    kind: data.get("kind")?.trim(), since: instant(data.get("since")),
    until: instant(data.get("until")),
  };
}

function links() {
  for (const format of ["csv", "jsonl"]) {
    const link = document.getElementById(`export-${format}`);
    link.href = withQuery("/api/v1/audit/export", { ...filters(), format });
    link.download = `staffroom-audit.${format}`;
  }
}

async function search() {
  const limit = new FormData(document.getElementById("audit-filter")).get("limit");
  let data;
  try {
    data = await get(withQuery("/api/v1/audit", { ...filters(), limit, order: "tail" }));
  } catch (error) {
    flash(error);
    return;
  }
  const rows = data.records.slice().reverse().map(row);
  document.querySelector("#audit-table tbody").replaceChildren(...rows);
  document.getElementById("audit-count").textContent = t("audit.count", rows.length);
}

function details(record) {
  const entries = Object.entries(record.details ?? {}).filter(([k]) => k !== "node");
  return entries.map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join("  ");
}

function row(r) {
  return el("tr", { "data-seq": r.seq, "data-kind": r.kind, "data-outcome": r.outcome },
    el("td", { title: r.time }, fmtTime(r.time)),
    el("td", {}, r.kind),
    el("td", { class: `outcome-${r.outcome}` }, r.outcome),
    el("td", {}, r.actor ?? ""),
    el("td", {}, r.subject ?? ""),
    el("td", {}, r.school ?? ""),
    el("td", {}, r.source ?? ""),
    // The gateway node that wrote it (a trail in PostgreSQL); empty for a one-machine log.
    el("td", { class: "node" }, r.node ?? ""),
    el("td", { class: "details" }, details(r)));
}

async function verify() {
  const box = document.getElementById("audit-verify");
  const text = document.getElementById("audit-verify-text");
  try {
    const v = await get("/api/v1/audit/verify");
    box.dataset.ok = String(v.ok);
    if (!v.ok) text.textContent = t("audit.broken", v.first_bad_seq ?? "?", v.message);
    else if (v.last_checkpoint) {
      text.textContent = t("audit.ok", v.records, v.last_checkpoint.seq,
        fmtTime(v.last_checkpoint.time));
    } else text.textContent = t("audit.okNoCheckpoint", v.records);
  } catch (error) {
    box.dataset.ok = "false";
    text.textContent = error.message;
  }
}
