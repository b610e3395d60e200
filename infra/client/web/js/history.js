// The caller's renders, newest first, filtered by status and subject, a page at a time.
import { formatSeconds, formatTime, h, replace } from "./dom.js";

const PAGE = 10;

export class History {
  constructor(root, { api, onOpen, onError }) {
    this.root = root;
    this.api = api;
    this.onOpen = onOpen;
    this.onError = onError;
    this.filters = { status: "", subjectType: "", subjectId: "" };
    this.renders = [];
    this.cursor = null;
    this.build();
  }

  build() {
    const f = this.filters;
    const status = h("select", { id: "history-status", onchange: (e) => { f.status = e.target.value; this.reload(); } },
      [["", "Any status"], ["queued", "Queued"], ["rendering", "Rendering"], ["complete", "Complete"], ["failed", "Failed"], ["cancelled", "Cancelled"]]
        .map(([v, t]) => h("option", { value: v }, t)));
    const type = h("select", { id: "history-subject-type", "aria-label": "Subject type" },
      [["", "Any subject"], ["movie", "Movie"], ["generation", "Generation"], ["clip", "Clip"]].map(([v, t]) => h("option", { value: v }, t)));
    const id = h("input", { id: "history-subject-id", placeholder: "Subject id", "aria-label": "Subject id", maxlength: 128 });
    this.hint = h("small", { class: "hint", "aria-live": "polite" });
    const form = h("form", { class: "filters", role: "search", "aria-label": "Filter the history", onsubmit: (e) => {
      e.preventDefault();
      f.subjectType = type.value;
      f.subjectId = id.value.trim();
      if (Boolean(f.subjectType) !== Boolean(f.subjectId)) {
        this.hint.textContent = "To filter by subject, choose its type and type its id.";
        return;
      }
      this.hint.textContent = "";
      this.reload();
    } },
    h("label", { for: "history-status", class: "visually-hidden" }, "Status"), status, type, id,
    h("button", { type: "submit", class: "secondary" }, "Filter"));
    this.list = h("ul", { class: "history", id: "history-list", "aria-live": "polite" });
    this.more = h("button", { type: "button", class: "secondary", hidden: true, onclick: () => this.load() }, "Show more");
    replace(this.root,
      h("div", { class: "section-head" }, h("h2", { id: "history-title" }, "History"),
        h("button", { type: "button", class: "link", onclick: () => this.reload() }, "Refresh")),
      form, this.hint, this.list, this.more);
  }

  async reload() {
    this.renders = [];
    this.cursor = null;
    await this.load();
  }

  async load() {
    const f = this.filters;
    try {
      const page = await this.api.list({
        status: f.status, subjectType: f.subjectType, subjectId: f.subjectId, limit: PAGE, cursor: this.cursor,
      });
      this.renders.push(...page.renders);
      this.cursor = page.nextCursor || null;
    } catch (error) {
      this.onError(error);
    }
    this.draw();
  }

  draw(openId) {
    if (openId !== undefined) this.openId = openId;
    const items = this.renders.map((r) => {
      const subject = r.subject ? `${r.subject.type[0].toUpperCase()}${r.subject.type.slice(1)} ${r.subject.id}` : "No subject";
      const length = r.output ? formatSeconds(r.output.durationSeconds) : "";
      const progress = r.status === "rendering" || r.status === "queued" ? `${r.progress} %` : "";
      return h("li", {},
        h("button", { type: "button", class: `history-item${r.renderId === this.openId ? " open" : ""}`,
          "aria-current": r.renderId === this.openId ? "true" : null, dataset: { renderId: r.renderId },
          onclick: () => this.onOpen(r.renderId) },
          r.output?.thumbnailUrl
            ? h("img", { class: "thumb", src: r.output.thumbnailUrl, alt: "", loading: "lazy", width: 64, height: 36 })
            : h("span", { class: "thumb", "aria-hidden": "true" }, { failed: "!", cancelled: "–", complete: "✓" }[r.status] || "…"),
          h("span", { class: "what" }, h("strong", {}, subject),
            h("small", {}, h("span", { class: `badge status-${r.status}` }, r.status), " ", formatTime(r.createdAt))),
          h("span", { class: "figures" }, [progress, length, r.output?.deleted ? "deleted" : "", `${r.cost} cr`].filter(Boolean).join(" · "))));
    });
    if (!items.length) items.push(h("li", { class: "empty" }, "No renders match."));
    replace(this.list, items);
    this.more.hidden = !this.cursor;
  }
}
