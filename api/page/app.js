/*
 * vidqueue's web page: pick or drop videos, upload each straight to storage,
 * follow its job live, play the result.
 *
 * Small files go up in one presigned PUT (POST /uploads, then
 * POST /uploads/{jobId}/complete). Files from `multipartThresholdBytes` on go
 * up in parts through the API's Uppy-shaped multipart endpoints (/s3/multipart):
 * each failed part is sent again with backoff; when the network stays down the
 * upload pauses, and resuming first lists the parts storage already holds, so
 * only the missing ones are sent. Each job is then followed through its event
 * stream (GET /events/{jobId}), or by polling GET /status/{jobId} when the
 * stream cannot be had.
 *
 * The API key or access token is kept in localStorage and sent as
 * `Authorization: Bearer`; EventSource cannot send headers, so the stream gets
 * it as `?access_token=`. Presigned URLs are never logged or shown: only the
 * download link carries one, because that is what the person needs.
 *
 * Tests may set `window.vidqueuePage` before this script runs to change the
 * settings below (e.g. a small multipart threshold).
 */
(() => {
  "use strict";

  const MIB = 1024 * 1024;
  const MIN_PART_BYTES = 5 * MIB; // S3's smallest part, except the last
  const MAX_PARTS = 10000;
  const FINAL_STATES = new Set(["completed", "failed", "cancelled"]);
  const CREDENTIAL_KEY = "vidqueue.credential";
  // Headers that browsers set themselves and refuse from scripts.
  const UNSAFE_HEADERS = new Set(["content-length", "host", "connection"]);

  const settings = Object.assign(
    {
      multipartThresholdBytes: 64 * MIB,
      partBytes: 8 * MIB,
      parallelParts: 3,
      attempts: 4,
      retryDelayMs: 1000,
      pollIntervalMs: 2000,
      maxEventStreams: 4,
      streamErrorsBeforePolling: 3,
      jobsShown: 20,
    },
    window.vidqueuePage || {},
  );

  const CONTENT_TYPES = {
    mp4: "video/mp4", m4v: "video/mp4", mov: "video/quicktime",
    webm: "video/webm", mkv: "video/x-matroska", avi: "video/x-msvideo",
    mpg: "video/mpeg", mpeg: "video/mpeg", ogv: "video/ogg", "3gp": "video/3gpp",
  };

  const STATE_LABELS = {
    uploading: "Uploading", waiting: "Waiting", active: "Processing",
    completed: "Ready", failed: "Failed", cancelled: "Cancelled",
  };

  const STAGE_LABELS = {
    probing: "checking the video", transcoding: "transcoding",
    poster: "making the poster", publishing: "saving the results",
    queued: "queued", retrying: "waiting to try again",
  };

  const CREDENTIAL_NAMES = {
    apikey: "API key", jwt: "Supabase access token",
  };

  const $ = (id) => document.getElementById(id);
  const authMode = document.body.dataset.authMode || "none";
  const views = new Map();
  let openStreams = 0;
  let nextViewId = 1;

  /** An answer of the API other than 2xx, with its `detail` for people. */
  class ApiError extends Error {
    constructor(status, code, detail) {
      super(detail || `the API answered ${status}`);
      this.status = status;
      this.code = code;
    }
  }

  /** A request that did not succeed: a network fault, or `aborted` by the page. */
  class TransferError extends Error {
    constructor(message, status, aborted = false) {
      super(message);
      this.status = status;
      this.aborted = aborted;
    }
  }

  // ---- credentials -------------------------------------------------------

  function credential() {
    try {
      return localStorage.getItem(CREDENTIAL_KEY) || "";
    } catch {
      return "";
    }
  }

  function authHeaders(token = credential()) {
    return token ? { Authorization: `Bearer ${token}` } : {};
  }

  async function api(method, path, body, token) {
    const headers = { Accept: "application/json", ...authHeaders(token) };
    const init = { method, headers };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let answer;
    try {
      answer = await fetch(path, init);
    } catch {
      throw new TransferError("the API cannot be reached", 0);
    }
    let data = null;
    try {
      data = await answer.json();
    } catch {
      data = null;
    }
    if (!answer.ok) {
      const error = new ApiError(answer.status, data && data.error, data && data.detail);
      if (answer.status === 401 && token === undefined) credentialRefused(error);
      throw error;
    }
    return data;
  }

  function setupAccess() {
    if (authMode === "none") return;
    const name = CREDENTIAL_NAMES[authMode] || "API key or access token";
    $("access").hidden = false;
    $("credential-label").textContent = name;
    showSavedCredential();
    $("access-form").addEventListener("submit", saveCredential);
    $("forget").addEventListener("click", forgetCredential);
  }

  function showSavedCredential() {
    const saved = Boolean(credential());
    $("credential").placeholder = saved ? "Saved in this browser" : "";
    $("forget").hidden = !saved;
  }

  async function saveCredential(event) {
    event.preventDefault();
    const input = $("credential");
    const token = input.value.trim();
    const name = $("credential-label").textContent;
    if (!token) {
      accessMessage(`Enter your ${name}.`, true);
      input.focus();
      return;
    }
    try {
      await api("GET", "/jobs?limit=1", undefined, token);
    } catch (error) {
      accessMessage(`This ${name} was not accepted: ${error.message}`, true);
      input.focus();
      return;
    }
    localStorage.setItem(CREDENTIAL_KEY, token);
    input.value = "";
    showSavedCredential();
    accessMessage(`${name} saved in this browser.`, false);
    refresh();
  }

  function forgetCredential() {
    localStorage.removeItem(CREDENTIAL_KEY);
    showSavedCredential();
    for (const view of views.values()) view.stopFollowing();
    views.clear();
    $("job-list").replaceChildren();
    updateEmpty();
    $("queue-info").textContent = "";
    accessMessage("Forgotten. Enter a key to see your videos again.", false);
    $("credential").focus();
  }

  function credentialRefused(error) {
    if (authMode === "none") return;
    const name = $("credential-label").textContent;
    const text = credential()
      ? `The saved ${name} was not accepted (${error.message}). Enter it again.`
      : `Enter your ${name} to upload and see your videos.`;
    accessMessage(text, true);
  }

  function accessMessage(text, isError) {
    const message = $("access-message");
    message.textContent = text;
    message.classList.toggle("error", isError);
  }

  function needsCredential() {
    if (authMode === "none" || credential()) return false;
    credentialRefused(new ApiError(401));
    $("credential").focus();
    return true;
  }

  // ---- formatting --------------------------------------------------------

  function formatBytes(bytes) {
    const units = ["bytes", "kB", "MB", "GB", "TB"];
    let value = bytes;
    let unit = 0;
    while (value >= 1000 && unit < units.length - 1) {
      value /= 1000;
      unit += 1;
    }
    return unit === 0 ? `${value} bytes` : `${value.toFixed(1)} ${units[unit]}`;
  }

  function formatSeconds(seconds) {
    const s = Math.max(1, Math.round(seconds));
    if (s < 60) return `${s} s`;
    const minutes = Math.round(s / 60);
    if (minutes < 60) return `${minutes} min`;
    return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
  }

  function contentTypeOf(file) {
    if (file.type) return file.type;
    const extension = file.name.split(".").pop().toLowerCase();
    return CONTENT_TYPES[extension] || "application/octet-stream";
  }

  function delay(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  // ---- one job on the page ----------------------------------------------

  /** A job's card: its state, progress, result and buttons. */
  class JobView {
    constructor(name) {
      const el = $("job-template").content.firstElementChild.cloneNode(true);
      const id = `job-${nextViewId++}`;
      const pick = (selector) => el.querySelector(selector);
      this.el = el;
      this.name = name;
      this.badge = pick(".badge");
      this.statusLine = pick(".job-status");
      this.progress = pick("progress");
      this.progressBox = pick(".job-progress");
      this.detail = pick(".job-detail");
      this.error = pick(".job-error");
      this.result = pick(".job-result");
      this.video = pick("video");
      this.facts = pick(".job-facts");
      this.download = pick(".download");
      this.buttons = {
        resume: pick(".resume"), cancel: pick(".cancel"),
        retry: pick(".retry"), play: pick(".play"),
      };
      const title = pick(".job-name");
      title.textContent = name;
      title.id = `${id}-name`;
      this.progress.id = `${id}-progress`;
      this.progress.setAttribute("aria-labelledby", `${id}-name`);
      for (const button of Object.values(this.buttons)) {
        button.setAttribute("aria-describedby", `${id}-name`);
      }
      this.buttons.resume.addEventListener("click", () => this.resume());
      this.buttons.cancel.addEventListener("click", () => this.cancel());
      this.buttons.retry.addEventListener("click", () => this.retry());
      this.buttons.play.addEventListener("click", () => this.showResult(true));
      this.video.addEventListener("error", () => this.unplayable());

      this.jobId = null;
      this.state = null;
      this.updatedAt = "";
      this.file = null;
      this.multipart = null;
      this.requests = new Set();
      this.uploading = false;
      this.paused = false;
      this.cancelled = false;
      this.following = false;
      this.source = null;
      this.pollTimer = null;
      this.announced = "";
      this.samples = [];
      this.sent = 0;
      this.autoplay = false;
    }

    bind(jobId) {
      this.jobId = jobId;
      this.el.dataset.jobId = jobId;
      views.set(jobId, this);
    }

    say(text) {
      // The status line is a live region: change it only when the news changes.
      if (text === this.announced) return;
      this.announced = text;
      this.statusLine.textContent = text;
    }

    setBadge(state, label) {
      this.el.dataset.state = state;
      this.badge.dataset.state = state;
      this.badge.textContent = label || STATE_LABELS[state] || state;
    }

    setButtons(shown) {
      for (const [name, button] of Object.entries(this.buttons)) {
        button.hidden = !shown.includes(name);
        button.disabled = false;
      }
    }

    setProgress(percent, detail) {
      this.progressBox.hidden = percent === null;
      if (percent === null) return;
      const value = Math.max(0, Math.min(100, percent));
      this.progress.value = value;
      this.progress.setAttribute("aria-valuetext", `${Math.floor(value)}%`);
      this.detail.textContent = detail || "";
    }

    showError(text) {
      this.error.hidden = !text;
      this.error.textContent = text || "";
    }

    // -- uploading --

    uploadStarted() {
      this.uploading = true;
      this.paused = false;
      this.samples = [];
      this.setBadge("uploading");
      this.setButtons(["cancel"]);
      this.showError("");
      this.setProgress(0, "Starting the upload…");
      this.say("Uploading: 0%");
    }

    uploadProgress(loaded, total) {
      this.sent = loaded;
      const now = performance.now();
      this.samples.push([now, loaded]);
      while (this.samples.length > 2 && now - this.samples[0][0] > 5000) {
        this.samples.shift();
      }
      const [since, before] = this.samples[0];
      const elapsed = (now - since) / 1000;
      const parts = [`${formatBytes(loaded)} of ${formatBytes(total)}`];
      if (elapsed >= 0.5 && loaded > before) {
        const speed = (loaded - before) / elapsed;
        parts.push(`${formatBytes(speed)}/s`);
        parts.push(`about ${formatSeconds((total - loaded) / speed)} left`);
      }
      const percent = total ? (100 * loaded) / total : 100;
      this.setProgress(percent, parts.join(" · "));
      this.say(`Uploading: ${Math.floor(percent / 10) * 10}%`);
    }

    interrupted(error, sent, total) {
      this.uploading = false;
      this.paused = true;
      this.setBadge("uploading", "Paused");
      this.detail.textContent = `${formatBytes(sent)} of ${formatBytes(total)} sent`;
      this.setButtons(["resume", "cancel"]);
      this.say("Upload paused: the connection failed.");
      this.showError(
        `The upload stopped (${error.message}). It resumes when the network is ` +
        "back, or press Resume upload.",
      );
    }

    refused(error) {
      this.uploading = false;
      this.setBadge("failed", "Not uploaded");
      this.setButtons([]);
      this.setProgress(null);
      this.say("Not uploaded.");
      this.showError(error.message);
    }

    resume() {
      if (this.uploading || !this.file) return;
      this.buttons.resume.disabled = true;
      runUpload(this, this.multipart ? sendParts : sendWhole);
    }

    async cancel() {
      this.buttons.cancel.disabled = true;
      this.cancelled = true;
      for (const request of this.requests) request.abort();
      if (!this.jobId) return; // bound later: the upload starter cancels it
      try {
        if (this.multipart && this.state !== "waiting" && this.state !== "active") {
          const { key, uploadId } = this.multipart;
          await api("DELETE", multipartPath(uploadId, key));
          this.apply(await api("GET", `/status/${this.jobId}`));
        } else {
          this.apply(await api("DELETE", `/jobs/${this.jobId}`));
        }
      } catch (error) {
        this.buttons.cancel.disabled = false;
        this.showError(`Not cancelled: ${error.message}`);
        if (error.status === 409) this.refreshStatus();
      }
    }

    async retry() {
      this.buttons.retry.disabled = true;
      try {
        this.autoplay = true;
        this.apply(await api("POST", `/jobs/${this.jobId}/retry`));
        follow(this);
      } catch (error) {
        this.buttons.retry.disabled = false;
        this.showError(`Not retried: ${error.message}`);
      }
    }

    async refreshStatus() {
      try {
        this.apply(await api("GET", `/status/${this.jobId}`));
      } catch {
        // The next event or poll brings it.
      }
    }

    // -- the job's status --

    apply(status) {
      // An answer that left the server before the last one shown is old news.
      if (status.updatedAt && status.updatedAt < this.updatedAt) return;
      this.updatedAt = status.updatedAt;
      this.el.dataset.created = status.createdAt || "";
      // While this browser holds the file, the upload itself tells its story.
      if (this.file && status.state === "uploading") return;
      const changed = status.state !== this.state;
      this.state = status.state;
      this.uploading = false;
      this.paused = false;
      this.setBadge(status.state);
      const handler = {
        uploading: () => this.showStaleUpload(),
        waiting: () => this.showWaiting(status),
        active: () => this.showActive(status),
        completed: () => this.showCompleted(status),
        failed: () => this.showFailed(status),
        cancelled: () => this.showCancelled(),
      }[status.state];
      if (handler) handler();
      if (changed && FINAL_STATES.has(status.state)) loadQueueInfo();
    }

    showStaleUpload() {
      this.setProgress(null);
      this.setButtons(["cancel"]);
      this.say("Upload not finished in this browser.");
    }

    showWaiting(status) {
      this.setProgress(null);
      this.setButtons(["cancel"]);
      this.showError("");
      const ahead = status.queuePosition;
      let place = "in the queue";
      if (ahead === 0) place = "next in line";
      else if (ahead > 0) place = `${ahead} ${ahead === 1 ? "video" : "videos"} ahead`;
      let text = status.stage === "retrying" ? "Waiting to try again" : `Waiting: ${place}`;
      if (status.estimatedTime) {
        text += `, ready in about ${formatSeconds(status.estimatedTime)}`;
      }
      this.say(`${text}.`);
    }

    showActive(status) {
      const stage = STAGE_LABELS[status.stage] || status.stage || "starting";
      const percent = status.progress || 0;
      this.setButtons(["cancel"]);
      this.showError("");
      this.setProgress(percent, `${percent}% · ${stage}`);
      this.say(`Processing (${stage}): ${Math.floor(percent / 10) * 10}%`);
    }

    showCompleted(status) {
      this.setProgress(null);
      this.showError("");
      this.say("Ready.");
      this.resultData = status.result || {};
      const hasVideo = Boolean(this.resultData.videoUrl);
      this.setButtons(hasVideo && this.result.hidden && !this.autoplay ? ["play"] : []);
      if (hasVideo && this.autoplay) this.showResult(false);
    }

    showFailed(status) {
      this.setProgress(null);
      this.setButtons(["retry"]);
      this.say("Failed.");
      this.showError(status.failedReason || "The job failed; no reason was given.");
    }

    showCancelled() {
      this.setProgress(null);
      this.setButtons(["retry"]);
      this.say("Cancelled.");
      this.showError("");
    }

    showResult(focus) {
      const result = this.resultData || {};
      this.buttons.play.hidden = true;
      this.result.hidden = false;
      if (result.posterUrl) this.video.poster = result.posterUrl;
      if (this.video.getAttribute("src") !== result.videoUrl) {
        this.video.src = result.videoUrl;
      }
      this.download.href = result.videoUrl;
      this.download.setAttribute("download", downloadName(this.name));
      const facts = [];
      if (result.duration) facts.push(`${result.duration.toFixed(1)} s`);
      if (result.width && result.height) facts.push(`${result.width}×${result.height}`);
      if (result.sizeBytes) facts.push(formatBytes(result.sizeBytes));
      this.facts.textContent = facts.join(" · ");
      this.video.setAttribute("aria-label", `Video: ${this.name}`);
      if (focus) this.video.focus();
    }

    unplayable() {
      if (this.result.hidden) return;
      this.showError(
        "This browser cannot play the video here; the download link still works.",
      );
    }

    stopFollowing() {
      this.following = false;
      if (this.source) {
        this.source.close();
        this.source = null;
        openStreams -= 1;
      }
      clearTimeout(this.pollTimer);
    }
  }

  function downloadName(name) {
    const stem = name.includes(".") ? name.slice(0, name.lastIndexOf(".")) : name;
    return `${stem || "video"}.mp4`;
  }

  function multipartPath(uploadId, key, suffix = "") {
    const base = `/s3/multipart/${encodeURIComponent(uploadId)}${suffix}`;
    return `${base}?key=${encodeURIComponent(key)}`;
  }

  // ---- uploads -----------------------------------------------------------

  function startUploads(files) {
    if (!files.length || needsCredential()) return;
    for (const file of files) {
      const view = new JobView(file.name);
      view.file = file;
      view.autoplay = true;
      $("job-list").prepend(view.el);
      updateEmpty();
      const first = file.size >= settings.multipartThresholdBytes ? startParts : startWhole;
      runUpload(view, first);
    }
  }

  async function runUpload(view, step) {
    view.uploadStarted();
    try {
      await step(view);
    } catch (error) {
      if (view.cancelled) return;
      if (isRetryable(error) && view.jobId) {
        view.interrupted(error, view.sent, view.file.size);
      } else if (view.jobId && error instanceof ApiError && error.status === 409) {
        view.uploading = false;
        view.refreshStatus();
      } else {
        view.refused(error);
      }
    }
  }

  function isRetryable(error) {
    if (error instanceof TransferError) return !error.aborted;
    return error instanceof ApiError && (error.status >= 500 || error.status === 429);
  }

  /** Run `attempt` until it succeeds, waiting longer after each network fault. */
  async function withRetries(view, attempt) {
    for (let tried = 1; ; tried += 1) {
      try {
        return await attempt();
      } catch (error) {
        if (view.cancelled || !isRetryable(error) || tried >= settings.attempts) {
          throw error;
        }
        await delay(settings.retryDelayMs * 2 ** (tried - 1));
      }
    }
  }

  /** PUT `blob` to a presigned URL, reporting bytes sent; resolves on 2xx. */
  function putBlob(view, url, blob, headers, onProgress) {
    return new Promise((resolve, reject) => {
      const request = new XMLHttpRequest();
      view.requests.add(request);
      const done = () => view.requests.delete(request);
      request.open("PUT", url);
      for (const [name, value] of Object.entries(headers || {})) {
        if (!UNSAFE_HEADERS.has(name.toLowerCase())) request.setRequestHeader(name, value);
      }
      request.upload.addEventListener("progress", (event) => onProgress(event.loaded));
      request.addEventListener("load", () => {
        done();
        if (request.status >= 200 && request.status < 300) {
          resolve(request.getResponseHeader("ETag"));
          return;
        }
        const why = request.status === 403 ? "; the upload link may have expired" : "";
        reject(new TransferError(`storage answered ${request.status}${why}`, request.status));
      });
      request.addEventListener("error", () => {
        done();
        reject(new TransferError("network error", 0));
      });
      request.addEventListener("abort", () => {
        done();
        reject(new TransferError("stopped", 0, true));
      });
      request.send(blob);
    });
  }

  async function startWhole(view) {
    const file = view.file;
    const ticket = await api("POST", "/uploads", {
      filename: file.name, contentType: contentTypeOf(file), size: file.size,
    });
    view.bind(ticket.jobId);
    view.ticket = { url: ticket.url, headers: ticket.headers };
    if (view.cancelled) return view.cancel();
    return sendWhole(view);
  }

  async function sendWhole(view) {
    const { file, ticket } = view;
    await withRetries(view, () =>
      putBlob(view, ticket.url, file, ticket.headers, (loaded) =>
        view.uploadProgress(loaded, file.size)),
    );
    view.uploadProgress(file.size, file.size);
    const status = await withRetries(view, () =>
      api("POST", `/uploads/${view.jobId}/complete`));
    uploaded(view, status);
  }

  async function startParts(view) {
    const file = view.file;
    const started = await api("POST", "/s3/multipart", {
      filename: file.name, type: contentTypeOf(file), size: file.size,
      metadata: { size: file.size },
    });
    view.bind(started.jobId);
    view.multipart = { key: started.key, uploadId: started.uploadId };
    if (view.cancelled) return view.cancel();
    return sendParts(view);
  }

  function partSize(size) {
    return Math.max(settings.partBytes, MIN_PART_BYTES, Math.ceil(size / MAX_PARTS));
  }

  async function storedParts(view) {
    const { key, uploadId } = view.multipart;
    const listed = await withRetries(view, () =>
      api("GET", multipartPath(uploadId, key)));
    return new Map(listed.map((part) => [part.PartNumber, part]));
  }

  /** Send the parts storage lacks, then join them into the object. */
  async function sendParts(view) {
    const { file } = view;
    const { key, uploadId } = view.multipart;
    const size = partSize(file.size);
    const count = Math.max(1, Math.ceil(file.size / size));
    const numbers = Array.from({ length: count }, (_, i) => i + 1);
    const lengthOf = (n) => Math.min(size, file.size - (n - 1) * size);

    const stored = await storedParts(view);
    const todo = numbers.filter((n) => (stored.get(n) || {}).Size !== lengthOf(n));
    let sent = file.size - todo.reduce((sum, n) => sum + lengthOf(n), 0);
    const sending = new Map();
    const report = () => {
      let loaded = sent;
      for (const bytes of sending.values()) loaded += bytes;
      view.uploadProgress(loaded, file.size);
    };
    report();

    const sendPart = async (n) => {
      const blob = file.slice((n - 1) * size, (n - 1) * size + lengthOf(n));
      await withRetries(view, async () => {
        const signed = await api("GET", multipartPath(uploadId, key, `/${n}`));
        sending.set(n, 0);
        try {
          await putBlob(view, signed.url, blob, signed.headers, (loaded) => {
            sending.set(n, loaded);
            report();
          });
          sent += blob.size;
        } finally {
          sending.delete(n);
          report();
        }
      });
    };
    const queue = [...todo];
    let failure = null;
    const worker = async () => {
      while (queue.length && !failure && !view.cancelled) {
        const n = queue.shift();
        try {
          await sendPart(n);
        } catch (error) {
          failure = failure || error;
        }
      }
    };
    const workers = Math.min(settings.parallelParts, todo.length);
    await Promise.all(Array.from({ length: workers }, worker));
    if (failure) throw failure;

    const held = await storedParts(view);
    const missing = numbers.filter((n) => !held.has(n));
    if (missing.length) throw new TransferError(`parts ${missing.join(", ")} are missing`, 0);
    const parts = numbers.map((n) => ({ PartNumber: n, ETag: held.get(n).ETag }));
    const joined = await withRetries(view, () =>
      api("POST", multipartPath(uploadId, key, "/complete"), { parts }));
    uploaded(view, joined.status);
  }

  function uploaded(view, status) {
    view.uploading = false;
    view.ticket = null;
    view.apply(status);
    follow(view);
  }

  // ---- following jobs ----------------------------------------------------

  function follow(view) {
    if (!view.jobId || view.following || FINAL_STATES.has(view.state)) return;
    view.following = true;
    if (window.EventSource && openStreams < settings.maxEventStreams) {
      stream(view);
    } else {
      poll(view);
    }
  }

  function stream(view) {
    const token = credential();
    const query = token ? `?access_token=${encodeURIComponent(token)}` : "";
    const source = new EventSource(`/events/${encodeURIComponent(view.jobId)}${query}`);
    view.source = source;
    view.el.dataset.live = "events";
    openStreams += 1;
    let errors = 0;
    source.addEventListener("status", (event) => {
      errors = 0;
      view.apply(JSON.parse(event.data));
      if (FINAL_STATES.has(view.state)) view.stopFollowing();
    });
    source.addEventListener("error", () => {
      if (!view.source) return;
      errors += 1;
      const closed = source.readyState === EventSource.CLOSED;
      if (!closed && errors < settings.streamErrorsBeforePolling) return;
      view.stopFollowing();
      view.following = true;
      poll(view);
    });
  }

  function poll(view) {
    view.el.dataset.live = "polling";
    const tick = async () => {
      if (!view.following) return;
      try {
        view.apply(await api("GET", `/status/${encodeURIComponent(view.jobId)}`));
      } catch (error) {
        if (error.status === 404 || error.status === 401) {
          view.following = false;
          return;
        }
      }
      if (FINAL_STATES.has(view.state)) {
        view.following = false;
        return;
      }
      view.pollTimer = setTimeout(tick, settings.pollIntervalMs);
    };
    tick();
  }

  // ---- the list of jobs --------------------------------------------------

  async function refresh() {
    await Promise.all([loadJobs(), loadQueueInfo()]);
  }

  async function loadJobs() {
    const message = $("jobs-message");
    if (authMode !== "none" && !credential()) {
      credentialRefused(new ApiError(401));
      return;
    }
    try {
      const { jobs } = await api("GET", `/jobs?limit=${settings.jobsShown}`);
      message.textContent = "";
      for (const status of jobs) {
        let view = views.get(status.jobId);
        if (!view) {
          view = new JobView(status.filename || status.jobId);
          view.bind(status.jobId);
          $("job-list").append(view.el);
        }
        view.apply(status);
        if (status.state !== "uploading") follow(view);
      }
      sortJobs();
    } catch (error) {
      message.textContent = `Your videos cannot be listed: ${error.message}`;
      message.classList.add("error");
    }
    updateEmpty();
  }

  function sortJobs() {
    const list = $("job-list");
    // ISO times sort as text; a job not yet created ("~") goes on top.
    const created = (el) => el.dataset.created || "~";
    const items = [...list.children].sort((a, b) => {
      const [x, y] = [created(a), created(b)];
      return x === y ? 0 : x < y ? 1 : -1;
    });
    for (const item of items) list.append(item);
  }

  function updateEmpty() {
    $("jobs-empty").hidden = $("job-list").children.length > 0;
  }

  async function loadQueueInfo() {
    if (authMode !== "none" && !credential()) return;
    try {
      const info = await api("GET", "/queue-info");
      const workers = `${info.workers} ${info.workers === 1 ? "worker" : "workers"}`;
      $("queue-info").textContent =
        `Queue: ${info.waiting} waiting, ${info.active} processing, ${workers}.`;
    } catch {
      $("queue-info").textContent = "";
    }
  }

  // ---- picking and dropping ----------------------------------------------

  function setupPicking() {
    const input = $("files");
    const zone = $("dropzone");
    input.addEventListener("change", () => {
      startUploads([...input.files]);
      input.value = "";
    });
    for (const name of ["dragenter", "dragover"]) {
      zone.addEventListener(name, (event) => {
        event.preventDefault();
        zone.classList.add("dragging");
      });
    }
    zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("dragging");
      startUploads([...event.dataTransfer.files]);
    });
    // A file dropped beside the zone must not replace the page.
    for (const name of ["dragover", "drop"]) {
      window.addEventListener(name, (event) => event.preventDefault());
    }
  }

  function setupResuming() {
    window.addEventListener("online", () => {
      for (const view of views.values()) {
        if (view.paused) view.resume();
      }
    });
    window.addEventListener("beforeunload", (event) => {
      if ([...views.values()].some((view) => view.uploading)) event.preventDefault();
    });
  }

  setupAccess();
  setupPicking();
  setupResuming();
  $("refresh").addEventListener("click", refresh);
  refresh();
})();
