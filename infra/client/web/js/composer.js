// The "New render" form: uploads, scenes, soundtrack, output, subject, the live estimate, submit.
import { ApiError, explain, humanField, kindOf } from "./api.js";
import { $, field, formatBytes, formatSeconds, h, replace, select, uid } from "./dom.js";

const ANIMATIONS = [["none", "None"], ["fade-in", "Fade in"], ["typewriter", "Typewriter"], ["slide-up", "Slide up"], ["scale", "Scale"]];
const FONTS = ["Roboto", "Lato", "Source Sans Pro", "Source Serif Pro"].map((f) => [f, f]);
const POSITIONS = [["center", "Centre"], ["top", "Top"], ["bottom", "Bottom"]];
const FITS = [["cover", "Fill (crop)"], ["contain", "Fit (bars)"], ["stretch", "Stretch"]];
const TRANSITIONS = [
  ["none", "Cut"], ["fade", "Crossfade"], ["fadeblack", "Fade through black"], ["fadewhite", "Fade through white"],
  ["dissolve", "Dissolve"], ["wipeleft", "Wipe left"], ["wiperight", "Wipe right"], ["wipeup", "Wipe up"],
  ["wipedown", "Wipe down"], ["slideleft", "Slide left"], ["slideright", "Slide right"], ["slideup", "Slide up"],
  ["slidedown", "Slide down"], ["circleopen", "Circle open"], ["circleclose", "Circle close"], ["radial", "Radial"],
  ["smoothleft", "Smooth left"], ["smoothright", "Smooth right"], ["zoomin", "Zoom in"],
];
const RESOLUTIONS = [["720p", "720p"], ["1080p", "1080p"], ["1440p", "1440p"], ["4k", "4K"]];
const ASPECTS = [["16:9", "16:9 landscape"], ["9:16", "9:16 portrait"], ["1:1", "1:1 square"], ["4:5", "4:5 vertical"]];
const FPS = [[24, "24"], [25, "25"], [30, "30"], [50, "50"], [60, "60"]];
const QUALITIES = [["low", "Low (small file)"], ["medium", "Medium"], ["high", "High"]];
const SUBJECTS = [["", "None"], ["movie", "Movie"], ["generation", "Generation"], ["clip", "Clip"]];
const CUSTOM = "__custom__";

function newScene(type, src = "") {
  const transition = { type: "none", duration: 0.5 };
  if (type === "title") {
    return { key: uid("s"), type, text: "", duration: 2, animation: "fade-in", fontFamily: "Roboto", fontSize: 72,
      color: "#ffffff", background: "#111827", position: "center", transition };
  }
  if (type === "clip") return { key: uid("s"), type, src, trimStart: 0, duration: "", muted: false, fit: "cover", transition };
  return { key: uid("s"), type: "image", src, duration: 3, fit: "cover", transition };
}

export function emptyDraft() {
  return {
    uploads: [],
    scenes: [],
    soundtrack: { src: "", volume: 1, fadeOut: 0 },
    output: { resolution: "720p", aspectRatio: "16:9", fps: 30, quality: "medium" },
    subject: { type: "", id: "" },
  };
}

const num = (value) => (value === "" || value === null || value === undefined ? undefined : Number(value));

// The draft as a POST /renders body: only what the API knows, numbers as numbers, blanks left out.
export function toRequest(draft) {
  const scenes = draft.scenes.map((scene, index) => {
    const out = { type: scene.type };
    if (scene.type === "title") {
      Object.assign(out, { text: scene.text, duration: num(scene.duration), animation: scene.animation,
        fontFamily: scene.fontFamily, fontSize: num(scene.fontSize), color: scene.color,
        background: scene.background, position: scene.position });
    } else if (scene.type === "clip") {
      Object.assign(out, { src: scene.src, trimStart: num(scene.trimStart) ?? 0, fit: scene.fit });
      if (num(scene.duration) !== undefined) out.duration = num(scene.duration);
      if (scene.muted) out.muted = true;
    } else {
      Object.assign(out, { src: scene.src, duration: num(scene.duration), fit: scene.fit });
    }
    if (index > 0 && scene.transition && scene.transition.type !== "none") {
      out.transition = { type: scene.transition.type, duration: num(scene.transition.duration) };
    }
    return out;
  });
  const request = { timeline: { scenes }, output: { ...draft.output, fps: Number(draft.output.fps) } };
  if (draft.soundtrack.src) {
    request.timeline.soundtrack = { src: draft.soundtrack.src, volume: num(draft.soundtrack.volume) ?? 1,
      fadeOut: num(draft.soundtrack.fadeOut) ?? 0 };
  }
  if (draft.subject.type && draft.subject.id.trim()) {
    request.subject = { type: draft.subject.type, id: draft.subject.id.trim() };
  }
  return request;
}

// What must be filled in before asking the API at all (so a half-made draft sends no doomed requests).
export function missing(draft) {
  if (!draft.scenes.length) return "Add a scene to start: upload a clip or add a title.";
  for (const [index, scene] of draft.scenes.entries()) {
    if (scene.type === "title" && !scene.text.trim()) return `Scene ${index + 1}: type the title's text.`;
    if (scene.type !== "title" && !scene.src) return `Scene ${index + 1}: choose its source.`;
  }
  if (draft.subject.type && !draft.subject.id.trim()) return "Subject: give its id, or choose None.";
  if (draft.uploads.some((u) => u.status === "uploading")) return "Waiting for uploads to finish…";
  return null;
}

// "timeline.scenes.1.title.duration" -> "timeline.scenes.1.duration": the key our inputs carry.
function fieldKey(path) {
  return path.replace(/^(timeline\.scenes\.\d+)\.(clip|title|image)\b/, "$1");
}

export class Composer {
  constructor(root, { api, store, onSubmitted, onError, quota }) {
    this.root = root;
    this.api = api;
    this.store = store;
    this.onSubmitted = onSubmitted;
    this.onError = onError;
    this.quota = quota;
    this.draft = store.load() || emptyDraft();
    this.draft.uploads = this.draft.uploads.filter((u) => u.status === "done");
    this.estimateTimer = null;
    this.estimateSeq = 0;
    this.submitting = false;
    this.build();
    this.renderUploads();
    this.renderScenes();
    this.changed();
  }

  save() {
    this.store.save(this.draft);
  }

  build() {
    const d = this.draft;
    const fileInput = h("input", { type: "file", id: "files", multiple: true, class: "visually-hidden",
      accept: "video/mp4,video/quicktime,video/webm,image/png,image/jpeg,audio/mpeg,audio/mp4,audio/wav,.mp4,.mov,.webm,.png,.jpg,.jpeg,.mp3,.m4a,.wav",
      onchange: () => { this.uploadFiles([...fileInput.files]); fileInput.value = ""; } });
    const drop = h("label", { for: "files", class: "drop", tabindex: "-1" },
      h("span", { class: "drop-icon", "aria-hidden": "true" }, "⤒"),
      h("span", {}, h("strong", {}, "Choose files"), " or drop them here"),
      h("small", {}, "Video (MP4, MOV, WebM), images (PNG, JPEG), audio (MP3, M4A, WAV)"));
    drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      drop.classList.remove("over");
      this.uploadFiles([...e.dataTransfer.files]);
    });

    this.uploadList = h("ul", { class: "uploads", "aria-label": "Uploaded media" });
    this.sceneList = h("ol", { class: "scenes", "aria-label": "Scenes, in order" });
    this.soundtrackSelect = h("select", { id: "soundtrack", onchange: (e) => { d.soundtrack.src = e.target.value; this.changed(); } });
    this.estimateBox = h("div", { class: "estimate", id: "estimate", "aria-live": "polite" });
    this.submitButton = h("button", { type: "submit", class: "primary", id: "submit" }, "Render video");

    const outputFields = [
      field("Resolution", select(RESOLUTIONS, d.output.resolution, { id: "resolution", dataset: { field: "output.resolution" },
        onchange: (e) => { d.output.resolution = e.target.value; this.changed(); } })),
      field("Aspect ratio", select(ASPECTS, d.output.aspectRatio, { id: "aspect", dataset: { field: "output.aspectRatio" },
        onchange: (e) => { d.output.aspectRatio = e.target.value; this.changed(); } })),
      field("Frame rate", select(FPS, Number(d.output.fps), { id: "fps", dataset: { field: "output.fps" },
        onchange: (e) => { d.output.fps = Number(e.target.value); this.changed(); } })),
      field("Quality", select(QUALITIES, d.output.quality, { id: "quality", dataset: { field: "output.quality" },
        onchange: (e) => { d.output.quality = e.target.value; this.changed(); } })),
    ];
    const subjectId = h("input", { id: "subject-id", value: d.subject.id, maxlength: 128, autocomplete: "off",
      placeholder: "e.g. m1", dataset: { field: "subject.id" },
      oninput: (e) => { d.subject.id = e.target.value; this.changed(); } });
    const form = h("form", { class: "composer", novalidate: true, onsubmit: (e) => { e.preventDefault(); this.submit(); } },
      h("fieldset", {}, h("legend", {}, "Media"), fileInput, drop, this.uploadList),
      h("fieldset", {}, h("legend", {}, "Scenes"), this.sceneList,
        h("div", { class: "row add-scenes" },
          h("button", { type: "button", class: "secondary", onclick: () => this.addScene("title") }, "+ Title"),
          h("button", { type: "button", class: "secondary", onclick: () => this.addScene("clip") }, "+ Clip"),
          h("button", { type: "button", class: "secondary", onclick: () => this.addScene("image") }, "+ Image"))),
      h("fieldset", {}, h("legend", {}, "Soundtrack"),
        h("div", { class: "grid-3" },
          field("Music", this.soundtrackSelect),
          field("Volume", h("input", { type: "number", id: "soundtrack-volume", min: 0, max: 2, step: 0.1,
            value: d.soundtrack.volume, dataset: { field: "timeline.soundtrack.volume" },
            oninput: (e) => { d.soundtrack.volume = e.target.value; this.changed(); } })),
          field("Fade out (s)", h("input", { type: "number", id: "soundtrack-fade", min: 0, max: 30, step: 0.5,
            value: d.soundtrack.fadeOut, dataset: { field: "timeline.soundtrack.fadeOut" },
            oninput: (e) => { d.soundtrack.fadeOut = e.target.value; this.changed(); } })))),
      h("fieldset", {}, h("legend", {}, "Output"), h("div", { class: "grid-4" }, outputFields)),
      h("fieldset", {}, h("legend", {}, "Subject ", h("small", {}, "(optional: groups renders in the history)")),
        h("div", { class: "grid-2" },
          field("Type", select(SUBJECTS, d.subject.type, { id: "subject-type", dataset: { field: "subject.type" },
            onchange: (e) => { d.subject.type = e.target.value; this.changed(); } })),
          field("Id", subjectId))),
      h("div", { class: "submit-bar" }, this.estimateBox, this.submitButton));
    replace(this.root, form);
  }

  // --- uploads -----------------------------------------------------------------------

  // In parallel, but the new scenes keep the order the files were chosen in, whichever finishes first.
  async uploadFiles(files) {
    const uploads = files.map((file) => this.uploadOne(file));
    for (const pending of uploads) {
      const entry = await pending;
      if (entry.status !== "done") continue;
      if (entry.kind === "audio") {
        if (!this.draft.soundtrack.src) this.draft.soundtrack.src = entry.src;
      } else {
        this.draft.scenes.push(newScene(entry.kind === "video" ? "clip" : "image", entry.src));
      }
      this.renderUploads();
      this.renderScenes();
      this.changed();
    }
  }

  async uploadOne(file) {
    const entry = { id: uid("u"), name: file.name, size: file.size, status: "uploading", progress: 0, src: "", kind: "", duration: null };
    this.draft.uploads.push(entry);
    this.renderUploads();
    this.changed();
    probeDuration(file).then((seconds) => { entry.duration = seconds; this.renderUploads(); this.renderScenes(); this.save(); });
    try {
      const done = await this.api.upload(file, (fraction) => {
        entry.progress = fraction;
        this.updateUpload(entry);
      });
      Object.assign(entry, { status: "done", src: done.src, kind: kindOf(done.contentType), progress: 1 });
    } catch (error) {
      Object.assign(entry, { status: "failed", error: explain(error) });
      this.onError(error);
    }
    this.renderUploads();
    this.changed();
    return entry;
  }

  updateUpload(entry) {
    const row = this.uploadList.querySelector(`[data-upload="${entry.id}"]`);
    if (!row) return;
    const bar = row.querySelector("progress");
    bar.value = Math.round(entry.progress * 100);
    row.querySelector(".percent").textContent = `${Math.round(entry.progress * 100)} %`;
  }

  renderUploads() {
    const items = this.draft.uploads.map((u) => {
      const percent = Math.round(u.progress * 100);
      const label = `${u.name} upload`;
      let status;
      if (u.status === "uploading") {
        status = [h("progress", { max: 100, value: percent, "aria-label": label }), h("span", { class: "percent" }, `${percent} %`)];
      } else if (u.status === "failed") {
        status = h("span", { class: "error-text" }, u.error || "failed");
      } else {
        const add = u.kind === "audio"
          ? h("button", { type: "button", class: "link", onclick: () => { this.draft.soundtrack.src = u.src; this.changed(); } }, "Use as music")
          : h("button", { type: "button", class: "link", onclick: () => this.addScene(u.kind === "video" ? "clip" : "image", u.src) }, "Add to timeline");
        status = [h("span", { class: "ok" }, "✓ uploaded"), add];
      }
      return h("li", { dataset: { upload: u.id }, class: `upload ${u.status}` },
        h("span", { class: `kind kind-${u.kind || "file"}`, "aria-hidden": "true" }, { video: "▶", image: "◩", audio: "♪" }[u.kind] || "…"),
        h("span", { class: "name" }, u.name),
        h("span", { class: "meta" }, [formatBytes(u.size), u.duration ? ` · ${formatSeconds(u.duration)}` : ""]),
        h("span", { class: "status" }, status),
        u.status !== "uploading"
          ? h("button", { type: "button", class: "icon", "aria-label": `Remove ${u.name} from the list`,
              onclick: () => { this.draft.uploads = this.draft.uploads.filter((x) => x !== u); this.renderUploads(); this.renderScenes(); this.changed(); } }, "✕")
          : null);
    });
    replace(this.uploadList, items);
    this.uploadList.hidden = !items.length;
    this.renderSoundtrackOptions();
  }

  renderSoundtrackOptions() {
    const audio = this.draft.uploads.filter((u) => u.status === "done" && u.kind === "audio");
    const current = this.draft.soundtrack.src;
    const options = [["", "No music"], ...audio.map((u) => [u.src, u.name])];
    if (current && !audio.some((u) => u.src === current)) options.push([current, current.split("/").pop()]);
    replace(this.soundtrackSelect, options.map(([v, t]) => h("option", { value: v, selected: v === current }, t)));
  }

  // --- scenes ------------------------------------------------------------------------

  addScene(type, src = "") {
    this.draft.scenes.push(newScene(type, src));
    this.renderScenes();
    this.changed();
    const last = this.sceneList.lastElementChild;
    last?.querySelector("input, select")?.focus();
  }

  move(index, by) {
    const scenes = this.draft.scenes;
    const target = index + by;
    if (target < 0 || target >= scenes.length) return;
    [scenes[index], scenes[target]] = [scenes[target], scenes[index]];
    this.renderScenes();
    this.changed();
    this.sceneList.children[target]?.querySelector(`[data-move="${by}"]`)?.focus();
  }

  remove(index) {
    this.draft.scenes.splice(index, 1);
    this.renderScenes();
    this.changed();
    (this.sceneList.children[Math.min(index, this.draft.scenes.length - 1)]?.querySelector("button") ?? this.root.querySelector(".add-scenes button"))?.focus();
  }

  renderScenes() {
    const n = this.draft.scenes.length;
    const items = this.draft.scenes.map((scene, index) => this.sceneCard(scene, index, n));
    if (!items.length) items.push(h("li", { class: "empty" }, "No scenes yet. Upload a clip, or add a title."));
    replace(this.sceneList, items);
  }

  sceneCard(scene, index, count) {
    const name = { title: "Title", clip: "Clip", image: "Image" }[scene.type];
    const path = `timeline.scenes.${index}`;
    const set = (key, parse = (v) => v) => (e) => {
      scene[key] = parse(e.target.type === "checkbox" ? e.target.checked : e.target.value);
      this.changed();
    };
    const number = (key, attrs) => h("input", { type: "number", inputmode: "decimal", value: scene[key], dataset: { field: `${path}.${key}` }, oninput: set(key), ...attrs });
    let fields;
    if (scene.type === "title") {
      fields = [
        h("div", { class: "wide" }, field("Text", h("input", { value: scene.text, maxlength: 200, required: true, class: "title-text",
          dataset: { field: `${path}.text` }, oninput: set("text"), placeholder: "What the title says" }))),
        field("Duration (s)", number("duration", { min: 0.1, max: 60, step: 0.1 })),
        field("Animation", select(ANIMATIONS, scene.animation, { dataset: { field: `${path}.animation` }, onchange: set("animation") })),
        field("Font", select(FONTS, scene.fontFamily, { dataset: { field: `${path}.fontFamily` }, onchange: set("fontFamily") })),
        field("Size (px)", number("fontSize", { min: 8, max: 400, step: 1 })),
        field("Position", select(POSITIONS, scene.position, { dataset: { field: `${path}.position` }, onchange: set("position") })),
        h("div", { class: "colors" },
          field("Text colour", h("input", { type: "color", value: scene.color, dataset: { field: `${path}.color` }, oninput: set("color") })),
          field("Background", h("input", { type: "color", value: scene.background, dataset: { field: `${path}.background` }, oninput: set("background") }))),
      ];
    } else {
      const kind = scene.type === "clip" ? "video" : "image";
      const uploads = this.draft.uploads.filter((u) => u.status === "done" && u.kind === kind);
      const known = uploads.some((u) => u.src === scene.src);
      const custom = Boolean(scene.src) && !known;
      const urlInput = h("input", { type: "url", value: custom ? scene.src : "", placeholder: "https://… or s3://…", hidden: !custom,
        "aria-label": `Scene ${index + 1} source URL`, dataset: { field: `${path}.src` }, oninput: set("src") });
      const sourceSelect = select(
        [["", uploads.length ? `Choose a${kind === "image" ? "n image" : " clip"}…` : `Upload a${kind === "image" ? "n image" : " clip"} first`],
          ...uploads.map((u) => [u.src, u.name]), [CUSTOM, "From a URL…"]],
        custom ? CUSTOM : scene.src,
        { dataset: { field: `${path}.src` }, onchange: (e) => {
          const custom = e.target.value === CUSTOM;
          urlInput.hidden = !custom;
          scene.src = custom ? urlInput.value : e.target.value;
          if (custom) urlInput.focus();
          this.changed();
        } });
      const upload = uploads.find((u) => u.src === scene.src);
      fields = [h("div", { class: "wide" }, field("Source", sourceSelect), urlInput)];
      if (scene.type === "clip") {
        fields.push(
          field("Start at (s)", number("trimStart", { min: 0, step: 0.1 })),
          field("Length (s)", number("duration", { min: 0.1, max: 600, step: 0.1, placeholder: "to the end" }),
            upload?.duration ? `The clip is ${formatSeconds(upload.duration)}; empty = to its end` : "Empty = to the end of the clip"),
          field("Fit", select(FITS, scene.fit, { dataset: { field: `${path}.fit` }, onchange: set("fit") })),
          h("div", { class: "field check" }, h("label", {}, h("input", { type: "checkbox", checked: scene.muted, onchange: set("muted") }), " Mute its sound")),
        );
      } else {
        fields.push(
          field("Duration (s)", number("duration", { min: 0.1, max: 60, step: 0.1 })),
          field("Fit", select(FITS, scene.fit, { dataset: { field: `${path}.fit` }, onchange: set("fit") })),
        );
      }
    }
    let transition = null;
    if (index > 0) {
      const t = scene.transition;
      const durationInput = h("input", { type: "number", min: 0.1, max: 5, step: 0.1, value: t.duration, disabled: t.type === "none",
        dataset: { field: `${path}.transition.duration` }, oninput: (e) => { t.duration = e.target.value; this.changed(); } });
      transition = h("div", { class: "transition" },
        field("Transition in", select(TRANSITIONS, t.type, { dataset: { field: `${path}.transition.type` }, onchange: (e) => {
          t.type = e.target.value;
          durationInput.disabled = t.type === "none";
          this.changed();
        } })),
        field("Overlap (s)", durationInput));
    }
    const heading = `Scene ${index + 1}: ${name}`;
    return h("li", { class: `scene scene-${scene.type}`, dataset: { key: scene.key }, "aria-label": heading },
      transition,
      h("div", { class: "scene-head" },
        h("span", { class: `badge badge-${scene.type}` }, name),
        h("h3", {}, `Scene ${index + 1}`),
        h("div", { class: "scene-actions" },
          h("button", { type: "button", class: "icon", dataset: { move: "-1" }, disabled: index === 0, "aria-label": `Move scene ${index + 1} up`, onclick: () => this.move(index, -1) }, "↑"),
          h("button", { type: "button", class: "icon", dataset: { move: "1" }, disabled: index === count - 1, "aria-label": `Move scene ${index + 1} down`, onclick: () => this.move(index, 1) }, "↓"),
          h("button", { type: "button", class: "icon danger", "aria-label": `Remove scene ${index + 1}`, onclick: () => this.remove(index) }, "✕"))),
      h("div", { class: "scene-fields" }, fields));
  }

  // --- estimate and submit -----------------------------------------------------------

  changed() {
    this.save();
    this.clearInvalid();
    clearTimeout(this.estimateTimer);
    this.lastEstimate = null;
    const problem = missing(this.draft);
    this.submitButton.disabled = Boolean(problem) || this.submitting;
    if (problem) {
      this.estimateSeq += 1;
      replace(this.estimateBox, h("p", { class: "muted" }, problem));
      return;
    }
    replace(this.estimateBox, h("p", { class: "muted" }, "Estimating…"));
    this.estimateTimer = setTimeout(() => this.estimate(), 350);
  }

  async estimate() {
    const seq = ++this.estimateSeq;
    try {
      const result = await this.api.estimate(toRequest(this.draft));
      if (seq !== this.estimateSeq) return;
      this.lastEstimate = result;
      const quota = this.quota();
      const balance = quota?.credits;
      const covered = !balance || !balance.enabled || balance.balance >= result.credits;
      const left = quota?.renders?.remaining;
      // Clips without a length are reserved as if they ran to the longest output; the rest comes back.
      const openEnded = this.draft.scenes.some((scene) => scene.type === "clip" && num(scene.duration) === undefined);
      replace(this.estimateBox,
        h("div", { class: "estimate-figures" },
          h("div", {}, h("strong", { id: "estimate-credits" }, balance && !balance.enabled ? "free" : `${openEnded ? "up to " : ""}${result.credits} credit${result.credits === 1 ? "" : "s"}`),
            h("small", {}, balance?.enabled ? `of ${balance.balance} left` : "")),
          h("div", {}, h("strong", { id: "estimate-time" }, `≈ ${formatSeconds(result.estimatedRenderSeconds)}`), h("small", {}, "to render")),
          h("div", {}, h("strong", {}, `≤ ${formatSeconds(result.durationSeconds)}`), h("small", {}, "of video"))),
        openEnded ? h("p", { class: "hint" }, "A clip without a length is reserved in full; what the video does not use is refunded.") : null,
        covered ? null : h("p", { class: "error-text" }, "Not enough credits for this render."),
        left === 0 ? h("p", { class: "error-text" }, "You have no renders left in this window.") : null);
      this.submitButton.disabled = this.submitting || !covered;
    } catch (error) {
      if (seq !== this.estimateSeq) return;
      this.showInvalid(error);
      replace(this.estimateBox, h("p", { class: "error-text", role: "status" }, explain(error)));
      this.submitButton.disabled = true;
    }
  }

  clearInvalid() {
    for (const el of this.root.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  }

  showInvalid(error) {
    if (!(error instanceof ApiError) || !Array.isArray(error.details)) return;
    for (const problem of error.details) {
      if (!problem.field) continue;
      const el = this.root.querySelector(`[data-field="${CSS.escape(fieldKey(problem.field))}"]`);
      if (el) el.setAttribute("aria-invalid", "true");
    }
  }

  async submit() {
    if (this.submitting || missing(this.draft)) return;
    this.submitting = true;
    this.submitButton.disabled = true;
    this.submitButton.textContent = "Submitting…";
    // One key per attempt: a retried POST after a lost reply is the same render, charged once.
    const key = crypto.randomUUID();
    try {
      const created = await this.api.submit(toRequest(this.draft), key);
      this.onSubmitted(created, this.lastEstimate);
    } catch (error) {
      this.showInvalid(error);
      this.onError(error);
    } finally {
      this.submitting = false;
      this.submitButton.textContent = "Render video";
      this.changed();
    }
  }
}

// The length of a local media file, read by the browser before it is uploaded (for the trim hints).
function probeDuration(file) {
  if (!/^(video|audio)\//.test(file.type)) return Promise.resolve(null);
  return new Promise((resolve) => {
    const media = document.createElement(file.type.startsWith("audio") ? "audio" : "video");
    const url = URL.createObjectURL(file);
    const done = (value) => { URL.revokeObjectURL(url); resolve(value); };
    media.preload = "metadata";
    media.onloadedmetadata = () => done(Number.isFinite(media.duration) ? media.duration : null);
    media.onerror = () => done(null);
    media.src = url;
  });
}

export { humanField };
