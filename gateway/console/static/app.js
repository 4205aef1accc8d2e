// The console shell: sign-in, the password change a one-time password forces, navigation
// between the pages the signed-in role may see (from the gateway's `views`), sign-out.

import * as accounts from "./accounts.js";
import { ApiError, call, get, onUnauthorized, post, setCsrf } from "./api.js";
import * as audit from "./audit.js";
import * as hours from "./hours.js";
import { clearFlash, errorText, flash } from "./dom.js";
import * as help from "./help.js";
import { apply, lang, setLang, t } from "./i18n.js";
import * as keys from "./keys.js";
import * as recordings from "./recordings.js";
import * as sessions from "./sessions.js";

const PAGES = { sessions, recordings, audit, keys, accounts, hours, help };
let me = null;
let current = null;

const $ = (id) => document.getElementById(id);

function show(id) {
  for (const node of document.querySelectorAll("main > form, main > .view")) {
    node.hidden = node.id !== id;
  }
}

function leave() {
  current?.unmount();
  current = null;
}

function showSignin(error) {
  leave();
  me = null;
  setCsrf(null);
  document.body.dataset.state = "signin";
  $("nav").hidden = true;
  $("signout").hidden = true;
  $("who").textContent = "";
  show("signin");
  const box = $("signin-error");
  box.hidden = !error;
  box.textContent = error ? errorText(error) : "";
  $("signin").elements.user.focus();
}

function signedIn(session) {
  me = session;
  setCsrf(me.csrf);
  document.body.dataset.state = "ready";
  document.body.dataset.role = me.role;
  $("who").textContent = me.school ? t("who.school", me.name, me.role, me.school)
    : t("who", me.name, me.role);
  $("signout").hidden = false;
  $("nav").hidden = false;
  for (const link of document.querySelectorAll("#nav a[data-view]")) {
    link.hidden = !(link.dataset.view in me.views);
  }
  if (me.must_change_password) {
    leave();
    show("change-password");
    return;
  }
  route();
}

function route() {
  if (!me || me.must_change_password) return;
  const names = Object.keys(me.views).filter((name) => name in PAGES);
  let name = location.hash.slice(1);
  if (!names.includes(name)) name = names[0];
  leave();
  clearFlash();
  show(`view-${name}`);
  for (const link of document.querySelectorAll("#nav a[data-view]")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.body.dataset.view = name;
  current = PAGES[name];
  current.mount(me);
}

async function signIn(event) {
  event.preventDefault();
  const form = $("signin");
  const data = new FormData(form);
  form.querySelector("button").disabled = true;
  try {
    const session = await post("/console/session", {
      user: data.get("user").trim(), password: data.get("password"), totp: data.get("totp").trim(),
    });
    form.reset();
    $("signin-error").hidden = true;
    signedIn(session);
  } catch (error) {
    form.elements.password.value = "";
    form.elements.totp.value = "";
    showSignin(error);
  } finally {
    form.querySelector("button").disabled = false;
  }
}

async function changePassword(event) {
  event.preventDefault();
  const form = $("change-password");
  const { current, password, repeat } = form.elements;
  if (password.value !== repeat.value) {
    flash(t("password.mismatch"));
    return;
  }
  try {
    await post(`/api/v1/users/${encodeURIComponent(me.user)}/password`,
      { password: password.value, current_password: current.value });
    form.reset();
    flash(t("password.changed"), "ok");
    signedIn(await get("/console/session"));
  } catch (error) {
    flash(error);
  }
}

async function signOut() {
  try {
    await call("DELETE", "/console/session");
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) flash(error);
  }
  history.replaceState(null, "", location.pathname);
  showSignin(null);
}

function switchLanguage() {
  setLang(lang() === "ja" ? "en" : "ja");
  $("lang").textContent = t("lang.other");
  $("lang").lang = lang() === "ja" ? "en" : "ja";
  if (me) signedIn(me); // re-render the page's dynamic text
}

async function start() {
  apply();
  $("lang").textContent = t("lang.other");
  $("lang").lang = lang() === "ja" ? "en" : "ja";
  $("lang").addEventListener("click", switchLanguage);
  $("signin").addEventListener("submit", signIn);
  $("change-password").addEventListener("submit", changePassword);
  $("signout").addEventListener("click", signOut);
  addEventListener("hashchange", route);
  onUnauthorized((error) => { if (me) showSignin(error); });
  try {
    const session = await get("/console/session");
    if (session.user) signedIn(session);
    else showSignin(null);
  } catch (error) {
    showSignin(error.status === 401 ? null : error);
  }
}

start();
