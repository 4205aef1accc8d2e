// Accounts of the CIO's school (all schools for an administrator): list, disable, reset the
// password (the one-time password is shown once), and roster import with a preview
// (dry_run) of what will change before anything does.

import { get, post } from "./api.js";
import { ask, el, flash, fmtTime } from "./dom.js";
import { t } from "./i18n.js";

let me = null;
let bound = false;
let previewed = null; // the CSV text the shown preview was made from

export function mount(who) {
  me = who;
  if (!bound) {
    bind();
    bound = true;
  }
  load();
}

export function unmount() {}

function bind() {
  const form = document.getElementById("import-form");
  const text = document.getElementById("import-csv");
  const confirm = document.getElementById("import-confirm");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    preview();
  });
  text.addEventListener("input", () => { // a changed roster needs a new preview
    previewed = null;
    confirm.disabled = true;
  });
  confirm.addEventListener("click", commit);
  document.getElementById("import-file").addEventListener("change", async (event) => {
    const file = event.target.files?.[0];
    if (!file) return;
    text.value = await file.text();
    text.dispatchEvent(new Event("input"));
  });
}

async function load() {
  let data;
  try {
    data = await get("/api/v1/users");
  } catch (error) {
    flash(error);
    return;
  }
  document.querySelector("#accounts-table tbody").replaceChildren(...data.users.map(row));
}

function status(u) {
  const parts = [u.disabled ? t("accounts.disabled") : t("accounts.active")];
  if (u.locked_until && Date.parse(u.locked_until) > Date.now()) {
    parts.push(t("accounts.locked", fmtTime(u.locked_until)));
  }
  if (u.role !== "teacher" && !u.totp_enrolled) parts.push(t("accounts.noTotp"));
  return parts.join(", ");
}

function row(u) {
  const actions = el("td", { class: "actions" });
  if (u.id !== me.user && !u.disabled) {
    actions.append(
      el("button", { type: "button", "data-action": "reset", onclick: () => reset(u) },
        t("accounts.reset")),
      el("button", { type: "button", class: "danger", "data-action": "disable",
        onclick: () => disable(u) }, t("accounts.disable")));
  }
  return el("tr", { "data-user": u.id, "data-disabled": String(u.disabled) },
    el("td", {}, u.id), el("td", {}, u.name), el("td", {}, u.role),
    el("td", {}, u.school ?? "—"), el("td", {}, status(u)), actions);
}

async function disable(u) {
  const ok = await ask({ title: t("accounts.disableTitle", u.id), text: t("accounts.disableText"),
    confirm: t("accounts.disable"), danger: true });
  if (!ok) return;
  try {
    await post(`/api/v1/users/${encodeURIComponent(u.id)}/disable`);
    flash(t("accounts.disabledOk", u.id), "ok");
  } catch (error) {
    flash(error);
  }
  load();
}

async function reset(u) {
  const ok = await ask({ title: t("accounts.resetTitle", u.id), text: t("accounts.resetText"),
    confirm: t("accounts.reset"), danger: true });
  if (!ok) return;
  let result;
  try {
    result = await post(`/api/v1/users/${encodeURIComponent(u.id)}/password`, {});
  } catch (error) {
    flash(error);
    return;
  }
  await ask({ title: t("accounts.onceTitle", u.id), text: t("accounts.onceText"),
    body: [el("p", {}, el("code", { class: "secret", id: "one-time-password" }, result.password))],
    confirm: t("done"), cancel: false });
  load();
}

function list(title, ids) {
  return [el("h3", {}, title), el("ul", {}, ...ids.map((id) => el("li", {}, id)))];
}

async function preview() {
  const csv = document.getElementById("import-csv").value;
  const out = document.getElementById("import-result");
  const confirm = document.getElementById("import-confirm");
  let result;
  try {
    result = await post("/api/v1/users/import", { csv, dry_run: true });
  } catch (error) {
    out.replaceChildren(el("p", { class: "error" }, error.message));
    confirm.disabled = true;
    return;
  }
  out.replaceChildren(
    ...(result.create.length ? list(t("import.create", result.create.length), result.create)
      : [el("p", {}, t("import.nothing"))]),
    ...(result.unchanged.length
      ? list(t("import.unchanged", result.unchanged.length), result.unchanged) : []));
  out.dataset.stage = "preview";
  previewed = result.create.length ? csv : null;
  confirm.disabled = previewed === null;
}

async function commit() {
  const csv = document.getElementById("import-csv").value;
  const out = document.getElementById("import-result");
  const confirm = document.getElementById("import-confirm");
  if (previewed === null || csv !== previewed) return;
  confirm.disabled = true;
  let result;
  try {
    result = await post("/api/v1/users/import", { csv, dry_run: false });
  } catch (error) {
    out.replaceChildren(el("p", { class: "error" }, error.message));
    return;
  }
  previewed = null;
  document.getElementById("import-csv").value = "";
  out.dataset.stage = "done";
  out.replaceChildren(el("h3", {}, t("import.created", result.created.length)),
    el("table", { class: "passwords" }, el("tbody", {}, ...result.created.map((c) =>
      el("tr", { "data-user": c.id }, el("td", {}, c.id),
        el("td", {}, el("code", { class: "secret" }, c.password)))))));
  load();
}
