// Who is signed in, and where the API is. Kept in localStorage so a reload or a return visit
// finds the same account, draft and open render.
import config from "../config.js";

const KEY = "render-studio.session";

export function apiBase() {
  const fromQuery = new URLSearchParams(location.search).get("api");
  if (fromQuery) localStorage.setItem("render-studio.api", fromQuery);
  return fromQuery || localStorage.getItem("render-studio.api") || config.apiUrl || location.origin;
}

export function setApiBase(url) {
  if (url && url !== location.origin) localStorage.setItem("render-studio.api", url);
  else localStorage.removeItem("render-studio.api");
}

export function isLocal(url) {
  const host = new URL(url).hostname;
  return host === "127.0.0.1" || host === "localhost" || host === "[::1]";
}

export function load() {
  try {
    const session = JSON.parse(localStorage.getItem(KEY) || "null");
    return session && session.token ? session : null;
  } catch {
    return null;
  }
}

export function save(session) {
  localStorage.setItem(KEY, JSON.stringify(session));
}

export function clear() {
  localStorage.removeItem(KEY);
}

// Local stack: the gateway's stand-in for Cognito takes `local:<name>`.
export function localSession(name) {
  return { token: `local:${name}`, user: name, mode: "local" };
}

// A Cognito ID token: the name to show and its expiry come from its (unverified) payload; the
// API Gateway authorizer is what checks it.
export function tokenSession(token) {
  const trimmed = token.trim().replace(/^Bearer\s+/i, "");
  let claims = {};
  try {
    const payload = trimmed.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    claims = JSON.parse(atob(payload.padEnd(Math.ceil(payload.length / 4) * 4, "=")));
  } catch {
    claims = {};
  }
  return {
    token: trimmed,
    user: claims.email || claims["cognito:username"] || claims.sub || "signed in",
    mode: "token",
    expiresAt: claims.exp ? claims.exp * 1000 : null,
  };
}

export function userKey(session, name) {
  return `render-studio.${session.user}.${name}`;
}
