// Live sessions: GET /api/v1/sessions every few seconds; Watch opens the read-only live view
// (watch.js); Terminate asks for a reason and calls POST /api/v1/sessions/{id}/terminate.

import { get, post } from "./api.js";
import { ask, el, flash, fmtBytes, fmtDuration, fmtTime } from "./dom.js";
import { t } from "./i18n.js";
import * as watching from "./watch.js";

const REFRESH_MS = 5000;
let timer = null;
let me = null;
let generation = 0;

export function mount(who) {
  me = who;
  generation += 1;
  watching.bind();
  refresh(false);
  timer = setInterval(() => refresh(true), REFRESH_MS);
}

export function unmount() {
  clearInterval(timer);
  timer = null;
  generation += 1;
  watching.stop();
}

async function refresh(poll) {
  const mine = generation;
  let data;
  try {
    data = await get("/api/v1/sessions", { poll });
  } catch (error) {
    if (mine === generation) flash(error);
    return;
  }
  if (mine !== generation) return; // left the page while the request was out
  const rows = data.sessions.map((s) => row(s, data.node));
  document.querySelector("#sessions-table tbody").replaceChildren(...rows);
  document.getElementById("sessions-empty").hidden = rows.length > 0;
  document.getElementById("sessions-updated").textContent =
    t("sessions.updated", fmtTime(new Date()));
}

function row(s, here) {
  const actions = el("td", { class: "actions" });
  if (me.views.sessions === "manage") { // officers and admins: those the gateway lets watch
    if (!s.node || s.node === here) { // a live view comes from the node holding the session
      actions.append(el("button", { type: "button", "data-action": "watch",
        onclick: () => watching.watch(s) }, t("watch.button")));
    }
    actions.append(el("button", { type: "button", class: "danger", "data-action": "terminate",
      onclick: () => terminate(s) }, t("sessions.terminate")));
  }
  return el("tr", { "data-session": s.id, "data-user": s.user },
    el("td", {}, s.user),
    el("td", {}, s.school ?? "—"),
    el("td", {}, fmtTime(s.started_at)),
    el("td", { class: "num" }, fmtDuration(Date.now() - Date.parse(s.started_at))),
    el("td", {}, s.remote ?? ""),
    el("td", {}, s.posture ?? ""),
    el("td", { "data-col": "node" }, s.node ?? ""),
    el("td", { class: "num" }, s.bytes_sent == null ? "—" : fmtBytes(s.bytes_sent)),
    el("td", { class: "num" }, s.frames_sent == null ? "—" : String(s.frames_sent)),
    actions);
}

async function terminate(s) {
  const reason = el("textarea", { name: "reason", required: true, maxlength: 300, rows: 3 });
  const answer = await ask({
    title: t("sessions.terminateTitle", s.user), confirm: t("sessions.terminate"),
    danger: true, fields: [{ name: "reason", label: t("sessions.reason"), input: reason }],
  });
  if (!answer) return;
  try {
    await post(`/api/v1/sessions/${encodeURIComponent(s.id)}/terminate`,
      { reason: answer.reason.trim() });
    flash(t("sessions.terminated", s.user), "ok");
  } catch (error) {
    flash(error);
  }
  refresh(false);
}
