// Render studio: the reference frontend. It calls only the public API, as any team's app would.
import { Api, explain, span } from "./api.js";
import { Composer } from "./composer.js";
import { $, formatTime, h, replace } from "./dom.js";
import { History } from "./history.js";
import { RenderPanel } from "./render.js";
import * as session from "./session.js";

const ui = {
  signin: $("#signin"),
  workspace: $("#workspace"),
  account: $("#account"),
  who: $("#who"),
  balance: $("#balance"),
  alert: $("#alert"),
};
let app = null;

// --- messages --------------------------------------------------------------------------

let alertTimer = null;
function showError(error) {
  const message = typeof error === "string" ? error : explain(error);
  replace(ui.alert,
    h("p", {}, message),
    h("button", { type: "button", class: "icon", "aria-label": "Dismiss", onclick: () => { ui.alert.hidden = true; } }, "✕"));
  ui.alert.hidden = false;
  clearTimeout(alertTimer);
  alertTimer = setTimeout(() => { ui.alert.hidden = true; }, 12000);
  if (error && error.code === "UNAUTHORIZED") signOut();
}

// --- sign in ---------------------------------------------------------------------------

function showSignIn() {
  const base = session.apiBase();
  const local = session.isLocal(base);
  ui.workspace.hidden = true;
  ui.account.hidden = true;
  ui.signin.hidden = false;
  const mode = (value, text, checked) =>
    h("label", { class: "choice" }, h("input", { type: "radio", name: "mode", value, checked, onchange: sync }), text);
  const name = h("input", { id: "user-name", autocomplete: "username", required: true, value: localStorage.getItem("render-studio.last-user") || "",
    pattern: "[A-Za-z0-9._@\\-]{1,128}", placeholder: "e.g. alice" });
  const token = h("textarea", { id: "token", rows: 4, spellcheck: false, placeholder: "eyJraWQiOi…" });
  const apiUrl = h("input", { id: "api-url", type: "url", value: base, required: true });
  const localFields = h("div", { class: "field" }, h("label", { for: "user-name" }, "Choose a user name"), name,
    h("small", { class: "hint" }, "The local stack trusts any name (letters, digits, . _ @ -): each has its own renders and credits."));
  const tokenFields = h("div", { class: "field" }, h("label", { for: "token" }, "Cognito ID token"), token,
    h("small", { class: "hint" }, "From your app's sign-in, or the README's ", h("code", {}, "aws cognito-idp"), " command."));
  const status = h("p", { class: "error-text", role: "alert" });
  function sync() {
    const useToken = form.elements.mode.value === "token";
    localFields.hidden = useToken;
    tokenFields.hidden = !useToken;
  }
  const form = h("form", { novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    status.textContent = "";
    const useToken = form.elements.mode.value === "token";
    let candidate;
    if (useToken) {
      if (!token.value.trim()) { status.textContent = "Paste an ID token."; token.focus(); return; }
      candidate = session.tokenSession(token.value);
    } else {
      if (!name.checkValidity()) { status.textContent = "Use 1 to 128 letters, digits or . _ @ -"; name.focus(); return; }
      candidate = session.localSession(name.value);
      localStorage.setItem("render-studio.last-user", name.value);
    }
    let url;
    try {
      url = new URL(apiUrl.value).href.replace(/\/+$/, "");
    } catch {
      status.textContent = "The API URL is not a URL.";
      apiUrl.focus();
      return;
    }
    try {
      await new Api(url, candidate.token).quota(); // proves the token before anything else
    } catch (error) {
      status.textContent = explain(error);
      return;
    }
    session.setApiBase(url);
    session.save(candidate);
    start(candidate);
  } },
  h("fieldset", { class: "modes" }, h("legend", {}, "Sign in with"),
    mode("local", "a user name (local stack)", local), mode("token", "a Cognito token (deployed)", !local)),
  localFields, tokenFields,
  h("details", { open: !local && base === location.origin }, h("summary", {}, "API address"),
    h("div", { class: "field" }, h("label", { for: "api-url" }, "API base URL"), apiUrl,
      h("small", { class: "hint" }, "Deployed: the stack's ApiUrl output. Also settable with ?api=… or config.js."))),
  status,
  h("button", { type: "submit", class: "primary" }, "Sign in"));
  replace(ui.signin,
    h("div", { class: "hero" }, h("h1", { tabindex: "-1" }, "Render studio"),
      h("p", {}, "Upload clips, arrange scenes and titles, and render an MP4 in the background.")),
    form);
  sync();
  (local ? name : token).focus();
}

function signOut() {
  session.clear();
  app?.panel.stop();
  app = null;
  location.hash = "";
  showSignIn();
}

// --- the workspace ---------------------------------------------------------------------

function start(current) {
  const api = new Api(session.apiBase(), current.token);
  ui.signin.hidden = true;
  ui.workspace.hidden = false;
  ui.account.hidden = false;
  ui.who.textContent = current.user;
  let quota = null;
  const estimates = new Map(JSON.parse(localStorage.getItem(session.userKey(current, "estimates")) || "[]"));
  const draftKey = session.userKey(current, "draft");

  async function refreshQuota() {
    try {
      quota = await api.quota();
    } catch (error) {
      showError(error);
      return;
    }
    drawQuota(quota);
    composer?.changed(); // the estimate's "of N left" follows the balance
  }

  let composer = null;
  const history = new History($("#history"), { api, onError: showError, onOpen: (id) => openRender(id, true) });
  const panel = new RenderPanel($("#current"), {
    api, estimates, onError: showError,
    onChange: (render) => {
      if (!render) {
        localStorage.removeItem(session.userKey(current, "open"));
        showInAddress("");
      }
      refreshQuota();
      history.reload().then(() => history.draw(render ? render.renderId : null));
    },
  });
  composer = new Composer($("#compose-body"), {
    api,
    quota: () => quota,
    onError: showError,
    store: {
      load: () => { try { return JSON.parse(localStorage.getItem(draftKey)); } catch { return null; } },
      save: (draft) => localStorage.setItem(draftKey, JSON.stringify(draft)),
    },
    onSubmitted: async (created, estimate) => {
      if (estimate) {
        // Only the time-left hint uses it, until the render's own pace takes over.
        estimates.set(created.renderId, estimate.estimatedRenderSeconds);
        localStorage.setItem(session.userKey(current, "estimates"), JSON.stringify([...estimates].slice(-20)));
      }
      await openRender(created.renderId, true);
      refreshQuota();
      history.reload().then(() => history.draw(created.renderId));
    },
  });

  async function openRender(id, focus) {
    localStorage.setItem(session.userKey(current, "open"), id);
    showInAddress(id);
    history.draw(id);
    await panel.open(id, { focus });
    if (focus && window.matchMedia("(max-width: 900px)").matches) $("#current").scrollIntoView({ behavior: "smooth" });
  }

  app = { api, panel, composer, history };
  refreshQuota();
  history.reload();
  // Coming back: the render in the address (a shared or bookmarked link) or the one last open.
  const fromHash = /^#render=([A-Za-z0-9-]{1,80})$/.exec(location.hash)?.[1];
  const last = fromHash || localStorage.getItem(session.userKey(current, "open"));
  if (last) openRender(last, false);
}

function showInAddress(id) {
  const url = new URL(location.href);
  url.hash = id ? `render=${id}` : "";
  window.history.replaceState(null, "", url);
}

function drawQuota(q) {
  const credits = q.credits;
  ui.balance.textContent = credits.enabled ? `${credits.balance} credits` : "free";
  const windows = q.renders.windows.map((w) =>
    h("li", {}, h("span", {}, `Renders per ${span(w.seconds)}`),
      h("strong", {}, `${w.remaining} of ${w.limit} left`),
      h("small", {}, `resets ${formatTime(w.resetAt)}`),
      h("span", { class: "meter", "aria-hidden": "true" }, h("span", { style: `width: ${(100 * w.remaining) / Math.max(1, w.limit)}%` }))));
  replace($("#quota"),
    h("h2", {}, "Your account"),
    h("ul", { class: "quota", id: "quota-list" },
      h("li", {}, h("span", {}, "Credits"), h("strong", { id: "quota-credits" }, credits.enabled ? String(credits.balance) : "not charged")),
      windows,
      h("li", {}, h("span", {}, "Running now"), h("strong", {}, `${q.active.count} of ${q.active.limit}`)),
      h("li", {}, h("span", {}, "Waiting"), h("strong", {}, `${q.queued.count} of ${q.queued.limit}`))));
}

$("#sign-out").addEventListener("click", signOut);
window.addEventListener("hashchange", () => {
  const id = /^#render=([A-Za-z0-9-]{1,80})$/.exec(location.hash)?.[1];
  if (app && id && id !== app.panel.openId) app.panel.open(id, { focus: true });
});

const saved = session.load();
if (saved && saved.expiresAt && saved.expiresAt < Date.now()) {
  session.clear();
  showSignIn();
  showError("Your sign-in has expired. Please sign in again.");
} else if (saved) {
  start(saved);
} else {
  showSignIn();
}
