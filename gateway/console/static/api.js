// The console's only way to the gateway: same-origin fetch to /api/v1/ and /console/session.
// The session cookie is HttpOnly (this script never sees it); state-changing calls carry the
// session's CSRF token in a header, which another site cannot read or set.

export const CSRF_HEADER = "X-CSRF-Token";
export const POLL_HEADER = "X-Staffroom-Poll";

let csrf = null;
let unauthorized = () => {};

export const setCsrf = (token) => { csrf = token; };
export const onUnauthorized = (fn) => { unauthorized = fn; };

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** `poll`: a background refresh, which does not keep an idle session alive. */
export async function call(method, path, { body, poll = false } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrf) headers[CSRF_HEADER] = csrf;
  if (poll) headers[POLL_HEADER] = "1";
  let response;
  try {
    response = await fetch(path, {
      method, headers, credentials: "same-origin", cache: "no-store", redirect: "error",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "network", "The gateway cannot be reached.");
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data?.error ?? "http",
      data?.message ?? response.statusText);
    if (response.status === 401 && path !== "/console/session") unauthorized(error);
    throw error;
  }
  return data;
}

/** GET binary data (recording windows): { bytes: Uint8Array, headers: Headers }. */
export async function getBytes(path, { signal } = {}) {
  let response;
  try {
    response = await fetch(path, {
      credentials: "same-origin", cache: "no-store", redirect: "error", signal,
      headers: { Accept: "application/octet-stream" },
    });
  } catch (error) {
    if (error?.name === "AbortError") throw error;
    throw new ApiError(0, "network", "The gateway cannot be reached.");
  }
  if (!response.ok) {
    let data = null;
    try { data = await response.json(); } catch { data = null; }
    const error = new ApiError(response.status, data?.error ?? "http",
      data?.message ?? response.statusText);
    if (response.status === 401) unauthorized(error);
    throw error;
  }
  return { bytes: new Uint8Array(await response.arrayBuffer()), headers: response.headers };
}

export const get = (path, options) => call("GET", path, options);
export const post = (path, body = {}) => call("POST", path, { body });

/** `path?k=v&…` with the empty values left out. */
export function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(key, String(value));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}
