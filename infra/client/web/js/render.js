// The open render: live progress while it runs, then the video and what can be done with it.
import { TERMINAL, explain } from "./api.js";
import { formatBytes, formatSeconds, formatTime, h, replace } from "./dom.js";

const PHASES = { queued: "Queued", preparing: "Preparing sources", rendering: "Rendering", finalizing: "Finishing the video", done: "Done" };
const POLL_MS = 1000;

function ordinal(n) {
  const s = n % 100 >= 11 && n % 100 <= 13 ? "th" : { 1: "st", 2: "nd", 3: "rd" }[n % 10] || "th";
  return `${n}${s}`;
}

// Time left from the pace so far (server timestamps, so a slow poll does not skew it); before
// there is a pace, the estimate given at submission.
export function timeLeft(render, estimateSeconds) {
  if (render.status !== "rendering" || !render.startedAt) return null;
  const elapsed = (Date.now() - Date.parse(render.startedAt)) / 1000;
  if (render.progress >= 5 && elapsed > 0) return Math.max(1, (elapsed * (100 - render.progress)) / render.progress);
  if (estimateSeconds) return Math.max(1, estimateSeconds - elapsed);
  return null;
}

export class RenderPanel {
  constructor(root, { api, onChange, onError, estimates }) {
    this.root = root;
    this.api = api;
    this.onChange = onChange;
    this.onError = onError;
    this.estimates = estimates;
    this.render = null;
    this.timer = null;
    this.link = null;
    this.confirmingDelete = false;
    this.showEmpty();
  }

  showEmpty() {
    this.stop();
    this.render = null;
    replace(this.root,
      h("h2", { id: "current-title", tabindex: "-1" }, "Your render"),
      h("div", { class: "placeholder" },
        h("div", { class: "placeholder-art", "aria-hidden": "true" }, "▶"),
        h("p", {}, "Nothing open yet. Build a timeline and press ", h("strong", {}, "Render video"), ", or open one from your history.")));
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = null;
  }

  async open(renderId, { focus = false } = {}) {
    this.stop();
    this.link = null;
    this.confirmingDelete = false;
    this.openId = renderId;
    try {
      this.render = await this.api.get(renderId);
    } catch (error) {
      this.onError(error);
      if (error.code === "NOT_FOUND") {
        this.showEmpty();
        this.onChange(null);
      }
      return;
    }
    this.draw();
    if (focus) this.root.querySelector("h2")?.focus();
    this.schedule();
  }

  schedule() {
    if (!this.render || TERMINAL.has(this.render.status)) return;
    this.timer = setTimeout(() => this.poll(), POLL_MS);
  }

  async poll() {
    const id = this.render.renderId;
    try {
      const next = await this.api.get(id);
      if (!this.render || this.render.renderId !== id) return;
      const ended = !TERMINAL.has(this.render.status) && TERMINAL.has(next.status);
      this.render = next;
      this.draw();
      if (ended) this.onChange(next);
    } catch (error) {
      // A blip (network, a 5xx) is shown, and the next poll tries again.
      this.onError(error);
    }
    this.schedule();
  }

  draw() {
    const r = this.render;
    const title = r.subject ? `${r.subject.type[0].toUpperCase()}${r.subject.type.slice(1)} ${r.subject.id}` : "Your render";
    const meta = h("p", { class: "render-meta" },
      h("span", { class: `badge status-${r.status}` }, r.status),
      ` ${r.cost} credit${r.cost === 1 ? "" : "s"} · started ${formatTime(r.createdAt)} · `,
      h("code", { title: "Render id" }, r.renderId.slice(0, 8)));
    const body = TERMINAL.has(r.status) ? this.ended(r) : this.running(r);
    // The panel is redrawn on every poll; screen readers hear only a change of state.
    const state = `${r.renderId} ${r.status} ${r.phase} ${r.queuePosition ?? ""}`;
    if (state !== this.announced) {
      this.announced = state;
      const spoken = { complete: "The video is ready.", failed: "The render failed.", cancelled: "The render was cancelled." }[r.status];
      const announce = document.getElementById("announce");
      if (announce) announce.textContent = spoken || `${PHASES[r.phase] || r.phase}, ${r.progress} percent.`;
    }
    replace(this.root, h("h2", { id: "current-title", tabindex: "-1" }, title), meta, body);
  }

  running(r) {
    const estimate = this.estimates.get(r.renderId);
    const left = timeLeft(r, estimate);
    const waiting = r.status === "queued";
    const phase = waiting && r.queuePosition
      ? `Waiting for a free slot, ${ordinal(r.queuePosition)} in line`
      : PHASES[r.phase] || r.phase;
    const figures = [`${r.progress} %`];
    if (left) figures.push(`about ${formatSeconds(Math.round(left))} left`);
    return h("div", { class: "running" },
      h("div", { class: "progress-head" },
        h("span", { class: "phase", id: "render-phase" }, phase),
        h("span", { class: "figures", id: "render-figures" }, figures.join(" · "))),
      h("div", { class: `bar${waiting ? " waiting" : ""}`, role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100,
        "aria-valuenow": r.progress, "aria-valuetext": `${phase}, ${figures.join(", ")}`, "aria-labelledby": "render-phase" },
        h("span", { style: `width: ${Math.max(r.progress, waiting ? 0 : 2)}%` })),
      h("p", { class: "note" }, h("strong", {}, "You can close this page."),
        " The render keeps going on the server; come back any time to find it here."),
      h("div", { class: "row" },
        h("button", { type: "button", class: "secondary danger", id: "cancel", onclick: () => this.cancel() }, "Cancel render")));
  }

  ended(r) {
    if (r.status === "failed") {
      return h("div", { class: "ended failed", role: "status" },
        h("p", {}, h("strong", {}, "The render failed. "), "Its credits were refunded."),
        r.error ? h("p", { class: "error-text" }, `${r.error.message} (${r.error.code})`) : null);
    }
    if (r.status === "cancelled") {
      return h("div", { class: "ended", role: "status" }, h("p", {}, h("strong", {}, "Cancelled. "), "Its credits were refunded."));
    }
    const out = r.output || {};
    if (out.deleted || !out.url) {
      return h("div", { class: "ended", role: "status" },
        h("p", {}, h("strong", {}, "The video was deleted"), out.deleted ? "." : " or has expired."),
        out.durationSeconds ? h("p", { class: "muted" }, `It was ${formatSeconds(out.durationSeconds)}, ${formatBytes(out.sizeBytes)}.`) : null);
    }
    const video = h("video", { controls: true, preload: "metadata", playsinline: true, src: out.url, id: "result-video",
      poster: out.posterUrl || null,
      "aria-label": "The rendered video" });
    const actions = h("div", { class: "row actions" },
      h("a", { class: "button primary", href: out.url, download: `${r.renderId}.mp4`, id: "download" }, "Download MP4"),
      h("button", { type: "button", class: "secondary", id: "fresh-link", onclick: () => this.freshLink() }, "Get a shareable link"),
      h("button", { type: "button", class: `secondary danger${this.confirmingDelete ? " confirming" : ""}`, id: "delete",
        onclick: () => this.remove() }, this.confirmingDelete ? "Really delete?" : "Delete video"));
    const link = this.link
      ? h("div", { class: "link-box" },
          h("label", { for: "share-url" }, `Link, valid until ${formatTime(this.link.expiresAt)}`),
          h("div", { class: "row" },
            h("input", { id: "share-url", readonly: true, value: this.link.url, onfocus: (e) => e.target.select() }),
            h("button", { type: "button", class: "secondary", onclick: () => this.copy() }, "Copy")))
      : null;
    return h("div", { class: "ended complete" },
      h("div", { class: "video-frame" }, video),
      h("p", { class: "muted" }, `${formatSeconds(out.durationSeconds)} · ${out.width}×${out.height} · ${formatBytes(out.sizeBytes)}`),
      actions, link);
  }

  async cancel() {
    try {
      this.render = await this.api.cancel(this.render.renderId);
      this.stop();
      this.draw();
      this.onChange(this.render);
      this.root.querySelector("h2")?.focus();
    } catch (error) {
      this.onError(error);
      await this.open(this.render.renderId);
    }
  }

  async freshLink() {
    try {
      this.link = await this.api.downloadUrl(this.render.renderId, 24 * 3600);
      this.draw();
      this.root.querySelector("#share-url")?.focus();
    } catch (error) {
      this.onError(error);
    }
  }

  async copy() {
    const input = this.root.querySelector("#share-url");
    input.select();
    try {
      await navigator.clipboard.writeText(input.value);
    } catch {
      document.execCommand?.("copy");
    }
  }

  async remove() {
    if (!this.confirmingDelete) {
      this.confirmingDelete = true;
      this.draw();
      this.root.querySelector("#delete")?.focus();
      return;
    }
    try {
      this.render = await this.api.remove(this.render.renderId);
      this.confirmingDelete = false;
      this.link = null;
      this.draw();
      this.onChange(this.render);
    } catch (error) {
      this.onError(error);
    }
  }
}

export { explain };
