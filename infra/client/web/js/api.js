// The public HTTP API, as any frontend would call it: fetch with a bearer token, one error type.

export class ApiError extends Error {
  constructor(message, { status = 0, code = "", details = null, retryAfter = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfter = retryAfter;
  }
}

export const TERMINAL = new Set(["complete", "failed", "cancelled"]);

// What POST /uploads accepts (the API's UploadContentType), by what the browser reports or the extension.
const CONTENT_TYPES = {
  mp4: "video/mp4", m4v: "video/mp4", mov: "video/quicktime", webm: "video/webm",
  png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg",
  mp3: "audio/mpeg", m4a: "audio/mp4", wav: "audio/wav",
};
const ALLOWED = new Set(Object.values(CONTENT_TYPES));

export function contentTypeOf(file) {
  if (ALLOWED.has(file.type)) return file.type;
  if (file.type === "audio/x-wav" || file.type === "audio/wave") return "audio/wav";
  const ext = file.name.split(".").pop().toLowerCase();
  return CONTENT_TYPES[ext] || null;
}

export function kindOf(contentType) {
  return contentType.split("/")[0]; // video, image or audio
}

// The API accepts letters, digits, dot, space, dash and underscore in a file name.
export function safeFilename(name) {
  const cleaned = name.replace(/[^A-Za-z0-9._ -]+/g, "_").replace(/^[^A-Za-z0-9]+/, "");
  return (cleaned || "upload").slice(0, 128);
}

export class Api {
  constructor(baseUrl, token) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.token = token;
  }

  async call(method, path, { body, query, headers = {} } = {}) {
    const url = new URL(this.baseUrl + path);
    for (const [key, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
    }
    const init = { method, headers: { Authorization: `Bearer ${this.token}`, ...headers } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch {
      throw new ApiError(`Can't reach the render service at ${this.baseUrl}. Check your connection, or that it is running.`);
    }
    let data = null;
    const text = await response.text();
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!response.ok) throw errorFrom(response, data);
    return data;
  }

  quota() { return this.call("GET", "/quota"); }
  estimate(request) { return this.call("POST", "/renders/estimate", { body: request }); }
  submit(request, idempotencyKey) {
    return this.call("POST", "/renders", { body: request, headers: { "Idempotency-Key": idempotencyKey } });
  }
  get(id) { return this.call("GET", `/renders/${encodeURIComponent(id)}`); }
  list(filters) { return this.call("GET", "/renders", { query: filters }); }
  cancel(id) { return this.call("POST", `/renders/${encodeURIComponent(id)}/cancel`); }
  remove(id) { return this.call("DELETE", `/renders/${encodeURIComponent(id)}`); }
  downloadUrl(id, expiresInSeconds = 3600) {
    return this.call("POST", `/renders/${encodeURIComponent(id)}/download-url`, { body: { expiresInSeconds } });
  }

  // A presigned PUT straight to storage. XMLHttpRequest, because fetch() reports no upload progress.
  async upload(file, onProgress) {
    const contentType = contentTypeOf(file);
    if (!contentType) {
      throw new ApiError(`${file.name}: this kind of file can't be used. Use MP4, MOV or WebM video, PNG or JPEG images, MP3, M4A or WAV audio.`);
    }
    const ticket = await this.call("POST", "/uploads", {
      body: { filename: safeFilename(file.name), contentType, sizeBytes: file.size },
    });
    await new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open(ticket.method || "PUT", ticket.url);
      for (const [name, value] of Object.entries(ticket.headers || {})) xhr.setRequestHeader(name, value);
      xhr.upload.onprogress = (event) => {
        if (event.lengthComputable) onProgress(event.loaded / event.total);
      };
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) {
          onProgress(1);
          resolve();
        } else {
          const code = /<Code>([^<]+)<\/Code>/.exec(xhr.responseText || "");
          reject(new ApiError(`${file.name}: the storage refused the upload (${xhr.status}${code ? ` ${code[1]}` : ""}).`, { status: xhr.status }));
        }
      };
      xhr.onerror = () => reject(new ApiError(`${file.name}: the upload was interrupted. Check your connection and try again.`));
      xhr.send(file);
    });
    return { src: ticket.src, contentType };
  }
}

function errorFrom(response, data) {
  const retryAfter = response.headers.get("Retry-After");
  if (data && data.error) {
    return new ApiError(data.error.message || response.statusText, {
      status: response.status, code: data.error.code || "", details: data.error.details ?? null, retryAfter,
    });
  }
  // API Gateway's own refusals (the authorizer, throttling) carry only {"message"}.
  const message = (data && data.message) || response.statusText || "request failed";
  const code = response.status === 401 || response.status === 403 ? "UNAUTHORIZED" : "";
  return new ApiError(message, { status: response.status, code, retryAfter });
}

// What a person reads for each error the API returns: what happened and what to do.
export function explain(error) {
  if (!(error instanceof ApiError)) return `Something went wrong: ${error.message || error}`;
  const when = (seconds) => {
    const s = Number(seconds);
    if (!Number.isFinite(s)) return "later";
    const at = new Date(Date.now() + s * 1000);
    return s < 90 ? `in ${Math.ceil(s)} s` : `at ${at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}`;
  };
  switch (error.code) {
    case "UNAUTHORIZED":
      return "Your sign-in was refused or has expired. Please sign in again.";
    case "INSUFFICIENT_CREDITS":
      return `Not enough credits for this render. ${error.message}`;
    case "RATE_LIMITED": {
      const d = error.details || {};
      const per = d.seconds ? ` (${d.limit} per ${span(d.seconds)})` : "";
      return `You've reached your render limit${per}. You can submit again ${when(error.retryAfter)}.`;
    }
    case "TOO_MANY_QUEUED":
      return `Too many renders are waiting already. Wait for some to finish, or cancel one, then try ${when(error.retryAfter)}.`;
    case "VALIDATION_ERROR":
    case "INVALID_REQUEST":
      return `Please check the settings: ${humanField(error.message)}`;
    case "INVALID_JSON":
      return "The request could not be read (invalid JSON).";
    case "PAYLOAD_TOO_LARGE":
      return "This timeline is too large to send. Use fewer or shorter scenes.";
    case "NOT_FOUND":
      return "That render doesn't exist, or it belongs to another account.";
    case "RENDER_ALREADY_FINISHED":
      return "This render has already ended, so it can't be cancelled.";
    case "RENDER_NOT_COMPLETE":
      return "The video isn't ready yet.";
    case "OUTPUT_GONE":
      return "The video is no longer available: it was deleted or has expired.";
    case "IDEMPOTENCY_CONFLICT":
    case "IDEMPOTENCY_IN_PROGRESS":
      return "This render is already being submitted. Wait a moment and reload.";
    case "SUBMISSION_FAILED":
      return "The render could not be started, and nothing was charged. Please try again.";
    case "BUSY":
      return `The service is busy. Please try again ${when(error.retryAfter)}.`;
    case "METHOD_NOT_ALLOWED":
      return `The API refused this request: ${error.message}`;
    default:
      if (error.status === 429) return `Too many requests. Please try again ${when(error.retryAfter)}.`;
      if (error.status >= 500) return "The render service had a problem. Please try again in a moment.";
      return error.message;
  }
}

export function span(seconds) {
  if (seconds % 86400 === 0) return seconds === 86400 ? "day" : `${seconds / 86400} days`;
  if (seconds % 3600 === 0) return seconds === 3600 ? "hour" : `${seconds / 3600} hours`;
  if (seconds % 60 === 0) return seconds === 60 ? "minute" : `${seconds / 60} minutes`;
  return `${seconds} s`;
}

// "timeline.scenes.1.duration: Input should be ..." -> "scene 2, duration: Input should be ..."
export function humanField(message) {
  return message.replace(/^timeline\.scenes\.(\d+)\.?([\w.]*)/, (_, index, rest) => {
    const field = rest.replace(/^(clip|title|image)\./, "");
    return `scene ${Number(index) + 1}${field ? `, ${field}` : ""}`;
  }).replace(/^timeline\.soundtrack\.?/, "soundtrack ").replace(/^output\./, "output ");
}
