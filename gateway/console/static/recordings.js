// Recordings: the list (GET /api/v1/recordings, school-scoped by the gateway), an integrity
// check on demand (GET /api/v1/recordings/{id}), the export link (…/file, audited) and the
// player (player.js; its first window request is audited as a replay). Under the two-person rule
// (policy recording.replay_approval) a recording opens only after another officer approved the
// viewer's request: Request… asks with a reason (POST …/requests), the requests table lists the
// scope's requests with Approve/Decline for the ones of others (POST /api/v1/replay-requests/…).

import { fitCanvas } from "../viewer/canvas.js";
import { get, post, withQuery } from "./api.js";
import { ask, blank, el, flash, fmtBytes, fmtDuration, fmtTime } from "./dom.js";
import { t } from "./i18n.js";
import { Player } from "./player.js";

let player = null;
let bound = false;
let generation = 0;
let me = null;
let requests = [];

const $ = (id) => document.getElementById(id);

export function mount(who) {
  me = who;
  generation += 1;
  if (!bound) {
    bind();
    bound = true;
  }
  $("player-seek").setAttribute("aria-label", t("player.seek"));
  load();
}

export function unmount() {
  generation += 1;
  closePlayer();
}

function bind() {
  $("recordings-filter").addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  $("player-close").addEventListener("click", closePlayer);
  $("player-play").addEventListener("click", () => {
    if (player?.playing || player?.wantPlay && player?.state === "loading") player.pause();
    else player?.play();
    controls();
  });
  $("player-speed").addEventListener("change", (event) => {
    player?.setSpeed(Number(event.target.value));
  });
  const seek = $("player-seek");
  // While the slider is dragged only the time moves; letting go seeks.
  seek.addEventListener("input", () => showTime(Number(seek.value)));
  seek.addEventListener("change", () => player?.seek(Number(seek.value)));
}

async function load() {
  const mine = generation;
  const user = new FormData($("recordings-filter")).get("user")?.trim();
  let data;
  let asked;
  try {
    [data, asked] = await Promise.all([get(withQuery("/api/v1/recordings", { user })),
      get("/api/v1/replay-requests")]);
  } catch (error) {
    if (mine === generation) flash(error);
    return;
  }
  if (mine !== generation) return;
  requests = asked.requests;
  showRequests(data.recordings.some((r) => r.approval_required) || requests.length > 0);
  const rows = data.recordings.slice().reverse().map(row); // newest first
  document.querySelector("#recordings-table tbody").replaceChildren(...rows);
  $("recordings-empty").hidden = rows.length > 0;
}

/** Milliseconds the recording lasts: to its seal, or (cut off, running) until now. */
function duration(r) {
  const end = r.ended ? Date.parse(r.ended) : Date.now();
  return Math.max(0, end - Date.parse(r.started));
}

function row(r) {
  const id = encodeURIComponent(r.id);
  const verified = el("td", { class: "verified" },
    el("button", { type: "button", "data-action": "verify", onclick: (e) => verify(r, e.target) },
      t("rec.check")));
  return el("tr", { "data-recording": r.id, "data-user": r.user },
    el("td", {}, r.user),
    el("td", {}, r.school ?? "—"),
    el("td", { title: r.started }, fmtTime(r.started)),
    el("td", { title: r.ended ?? "" }, r.ended ? fmtTime(r.ended) : "—"),
    el("td", { class: "num" }, fmtDuration(duration(r))),
    el("td", { class: "num" }, fmtBytes(r.bytes)),
    el("td", { "data-sealed": String(r.sealed) }, r.sealed ? t("rec.yes") : t("rec.no")),
    verified,
    el("td", { class: "actions" }, ...actions(r, id)));
}

/** Play and Export when the recording is open to this officer; else Request… (or waiting). */
function actions(r, id) {
  const play = el("button", { type: "button", "data-action": "play", onclick: () => openPlayer(r) },
    t("rec.play"));
  const exported = el("a", { class: "button", "data-action": "export",
    href: `/api/v1/recordings/${id}/file`, download: `${r.id}.srec` }, t("rec.export"));
  if (!r.approval_required) return [play, exported];
  const mine = requests.filter((q) => q.recording === r.id && q.requester === me?.user);
  const granted = mine.find((q) => q.id === r.approved_by_request);
  const out = [];
  if (granted) out.push(play, ...(granted.purpose === "export" ? [exported] : []));
  if (mine.some((q) => q.state === "pending")) {
    out.push(el("span", { class: "pending", "data-state": "pending" }, t("rec.pending")));
  } else if (!granted || granted.purpose !== "export") {
    out.push(el("button", { type: "button", "data-action": "request",
      onclick: () => requestAccess(r) }, t("rec.request")));
  }
  return out;
}

async function requestAccess(r) {
  const reason = el("textarea", { name: "reason", required: true, minlength: 5, maxlength: 300,
    rows: 3 });
  const purpose = el("select", { name: "purpose" },
    el("option", { value: "replay" }, t("req.replay")),
    el("option", { value: "export" }, t("req.export")));
  const answer = await ask({
    title: t("req.askTitle", r.user), text: t("req.askText"), confirm: t("rec.request"),
    fields: [{ name: "reason", label: t("req.reason"), input: reason },
      { name: "purpose", label: t("req.purpose"), input: purpose }],
  });
  if (!answer) return;
  try {
    const made = await post(`/api/v1/recordings/${encodeURIComponent(r.id)}/requests`,
      { reason: answer.reason.trim(), purpose: answer.purpose });
    flash(t("req.sent", made.id), "ok");
  } catch (error) {
    flash(error);
  }
  load();
}

function showRequests(any) {
  $("replay-requests").hidden = !any;
  const rows = requests.slice().reverse().map((q) => {
    const cell = el("td", { class: "actions" });
    if (q.state === "pending" && q.requester !== me?.user) {
      cell.append(
        el("button", { type: "button", "data-action": "approve", onclick: () => decide(q, true) },
          t("req.approve")),
        el("button", { type: "button", class: "danger", "data-action": "decline",
          onclick: () => decide(q, false) }, t("req.decline")));
    } else if (q.state === "pending") {
      cell.append(el("span", { class: "pending" }, t("req.own")));
    }
    const state = {
      pending: () => t("req.state.pending"), approved: () => t("req.state.approved", fmtTime(q.expires)),
      declined: () => t("req.state.declined", q.decided_by), expired: () => t("req.state.expired"),
    }[q.state];
    return el("tr", { "data-request": q.id, "data-recording": q.recording, "data-state": q.state },
      el("td", {}, q.user), el("td", {}, q.requester),
      el("td", {}, q.purpose === "export" ? t("req.export") : t("req.replay")),
      el("td", {}, q.reason), el("td", {}, state ? state() : q.state), cell);
  });
  document.querySelector("#requests-table tbody").replaceChildren(...rows);
}

async function decide(q, yes) {
  try {
    await post(`/api/v1/replay-requests/${encodeURIComponent(q.id)}/${yes ? "approve" : "decline"}`);
    flash(t(yes ? "req.approved" : "req.declined", q.id), "ok");
  } catch (error) {
    flash(error);
  }
  load();
}

async function verify(r, button) {
  const cell = button.closest("td");
  button.disabled = true;
  button.textContent = t("rec.checking");
  try {
    const v = await get(`/api/v1/recordings/${encodeURIComponent(r.id)}`);
    cell.dataset.ok = String(v.verified);
    cell.dataset.cut = String(Boolean(v.cut_short));  // a crash's mark, not a forgery
    const [cls, text] = v.verified ? ["ok", t("rec.ok", v.chunks)]
      : v.cut_short ? ["cut", t("rec.cut", v.verify_message)]
      : ["error", t("rec.bad", v.verify_message)];
    cell.replaceChildren(el("span", { class: cls, title: v.verify_message }, text));
  } catch (error) {
    button.disabled = false;
    button.textContent = t("rec.check");
    flash(error);
  }
}

function openPlayer(r) {
  closePlayer();
  const section = $("player");
  const total = duration(r);
  section.hidden = false;
  section.dataset.recording = r.id;
  for (const key of ["seekMs", "seekedTo", "position"]) delete section.dataset[key];
  $("player-title").textContent = t("player.title", r.user, fmtTime(r.started));
  const seek = $("player-seek");
  seek.max = String(total);
  seek.value = "0";
  $("player-speed").value = "1";
  blank($("player-canvas"));
  player = new Player($("player-canvas"), {
    id: r.id, durationMs: total, box: $("player-box"),
    onTime: (ms) => {
      section.dataset.position = String(Math.round(ms));
      if (!seek.matches(":active")) seek.value = String(ms); // not under a dragging hand
      showTime(ms);
    },
    onState: (state, detail) => status(state, detail),
    onSeeked: (ms, took) => {
      // For the people (and tests) who want to know: how long a seek took to show the picture.
      section.dataset.seekMs = String(Math.round(took));
      section.dataset.seekedTo = String(ms);
    },
  });
  player.resize = new ResizeObserver(() => fitCanvas($("player-canvas"), $("player-box")));
  player.resize.observe($("player-box"));
  showTime(0);
  player.seek(0);
  section.scrollIntoView({ block: "nearest" });
}

function closePlayer() {
  if (!player) return;
  player.resize?.disconnect();
  player.close();
  player = null;
  const section = $("player");
  section.hidden = true;
  delete section.dataset.recording;
  delete section.dataset.state;
}

function showTime(ms) {
  const total = Number($("player-seek").max);
  $("player-time").textContent = `${fmtDuration(ms)} / ${fmtDuration(total)}`;
}

function status(state, detail) {
  $("player").dataset.state = state;
  const text = {
    loading: () => t("player.loading"), playing: () => t("player.playing", player?.speed ?? 1),
    paused: () => t("player.paused"), ended: () => t("player.ended"),
    error: () => t("player.error", detail ?? ""),
  }[state];
  $("player-status").textContent = text ? text() : "";
  controls();
}

function controls() {
  const playing = player && (player.playing || (player.wantPlay && player.state === "loading"));
  $("player-play").textContent = playing ? t("player.pause") : t("player.play");
  $("player-play").dataset.playing = String(Boolean(playing));
}
