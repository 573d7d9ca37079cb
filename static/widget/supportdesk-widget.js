/*
 * SupportDesk customer chat widget.
 *
 * Embed with one tag:
 *   <script src="https://HOST/static/widget/supportdesk-widget.js" defer></script>
 * Optional attributes: data-endpoint (API base, default: the script's origin),
 * data-title (default "Support"), data-open="true" (start opened).
 *
 * Speaks the protocol in docs/protocol.md: WebSocket frames at /ws/chat/ and a REST
 * fallback under /api/v1/conversations/. Files (images, PDFs) are uploaded over REST and read
 * from /api/v1/attachments/ with the conversation token, never through a plain URL. Plain ES2019, no dependencies, no build step.
 * Everything renders inside an open Shadow DOM; the only global is window.SupportDeskWidget.
 * All server and user text is rendered with textContent only, never as HTML.
 */
(function () {
  "use strict";

  if (window.SupportDeskWidget) return; // loaded twice on one page: keep the first instance

  // ---------------------------------------------------------------------------------------
  // Configuration. document.currentScript is only set while this file first executes, so it
  // has to be captured here, synchronously.
  // ---------------------------------------------------------------------------------------
  const SCRIPT = document.currentScript || findOwnScriptTag();

  function findOwnScriptTag() {
    const tags = document.getElementsByTagName("script");
    for (let i = tags.length - 1; i >= 0; i--) {
      if (/supportdesk-widget\.js(\?|#|$)/.test(tags[i].src || "")) return tags[i];
    }
    return null;
  }

  function resolveBase() {
    const attr = SCRIPT && SCRIPT.getAttribute("data-endpoint");
    let raw = attr || (SCRIPT && SCRIPT.src ? new URL(SCRIPT.src, location.href).origin : location.origin);
    try {
      const url = new URL(raw, location.href);
      raw = url.origin + url.pathname; // keeps a path prefix such as https://host/support
    } catch (e) {
      /* keep the attribute as given */
    }
    return raw.replace(/\/+$/, "");
  }

  const BASE = resolveBase();
  const WS_URL = BASE.replace(/^http/i, "ws") + "/ws/chat/"; // http→ws, https→wss
  const TITLE = (SCRIPT && SCRIPT.getAttribute("data-title")) || "Support";
  const START_OPEN = !!SCRIPT && SCRIPT.getAttribute("data-open") === "true";
  const HAS_WS = typeof window.WebSocket !== "undefined";

  const KEY_CONVERSATION = "supportdesk:conversation:" + BASE;
  const KEY_OUTBOX = "supportdesk:outbox:" + BASE;
  const KEY_OPEN = "supportdesk:open:" + BASE;

  const BACKOFF_START_MS = 500;
  const BACKOFF_CAP_MS = 10000;
  const WELCOME_TIMEOUT_MS = 10000; // a socket that never says welcome counts as a failed attempt
  const MAX_WS_FAILURES = 3; // consecutive attempts without a welcome before the HTTP fallback
  const POLL_MS = 3000;
  const BACKGROUND_WS_MS = 15000;
  const TYPING_SEND_MS = 3000;
  const TYPING_SHOW_MS = 4000;
  const REPLAY_GRACE_MS = 2000; // flush the outbox even if the replay never reaches welcome.seq

  const OFFLINE_TEXT = "Offline \u2014 your messages will be sent when we reconnect";
  const SENDER_LABELS = { customer: "You", agent: "Agent", bot: "SupportDesk" };
  // The server decides (by the file's bytes); these only spare the customer a useless upload.
  const ATTACH_MAX_BYTES = 10 * 1024 * 1024;
  const ATTACH_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"];
  const ATTACH_TOO_LARGE = "That file is too large. Files can be up to 10 MB.";
  const ATTACH_WRONG_TYPE = "Only images (PNG, JPEG, GIF, WebP) and PDF files can be sent.";
  const ATTACHMENT_PATH = /^\/api\/v1\/attachments\/\d+\/$/;

  // ---------------------------------------------------------------------------------------
  // Storage. Access itself can throw (sandboxed iframes, disabled cookies), so every use is
  // guarded and the widget degrades to in-memory state.
  // ---------------------------------------------------------------------------------------
  function storage(kind) {
    try {
      return window[kind] || null;
    } catch (e) {
      return null;
    }
  }

  function readJSON(kind, key) {
    const s = storage(kind);
    try {
      const raw = s && s.getItem(key);
      return raw ? JSON.parse(raw) : null;
    } catch (e) {
      return null;
    }
  }

  function writeStorage(kind, key, value) {
    const s = storage(kind);
    try {
      if (!s) return;
      if (value === null) s.removeItem(key);
      else s.setItem(key, typeof value === "string" ? value : JSON.stringify(value));
    } catch (e) {
      /* quota or privacy mode: keep going in memory */
    }
  }

  function loadConversation() {
    const c = readJSON("localStorage", KEY_CONVERSATION);
    return c && typeof c.id === "string" && typeof c.token === "string" ? { id: c.id, token: c.token } : null;
  }

  function loadOutbox() {
    const list = readJSON("localStorage", KEY_OUTBOX);
    if (!Array.isArray(list)) return [];
    return list.filter((i) => i && typeof i.client_id === "string" && typeof i.text === "string");
  }

  // ---------------------------------------------------------------------------------------
  // State
  // ---------------------------------------------------------------------------------------
  let conversation = loadConversation(); // {id, token} or null
  let outbox = loadOutbox(); // [{client_id, text}] not yet confirmed by the server
  let lastSeq = 0; // deliberately not persisted: a reload replays the whole history
  let state = "idle"; // idle | connecting | reconnecting | connected | offline | stopped
  let transport = HAS_WS ? "ws" : "http";
  let sock = null; // the one WebSocket in use (foreground, or the background probe in http mode)
  let wsReady = false; // sock has been welcomed
  let everConnected = false;
  let stopped = false; // after 4401/4403: no reconnect until the user does something
  let failures = 0; // consecutive connection attempts without a welcome
  let attempt = 0; // back-off exponent, reset by a welcome
  let reconnectTimer = null; // back-off timer (ws) or background WebSocket probe (http)
  let replayTarget = null; // welcome.seq; the outbox is resent once lastSeq reaches it
  let replayTimer = null;
  let creating = null; // in-flight POST /conversations/ promise
  let polling = false;
  let pollTimer = null;
  let pollInFlight = false;
  let pollAgain = false;
  let lastTypingSent = 0;
  let typingTimer = null;
  let isOpen = false;
  let ready = false;
  let openRequest = null; // open()/close() called before the DOM exists
  const httpInFlight = new Set(); // client_ids being POSTed in http mode
  const holds = new Map(); // client_id -> retry timer after rate_limited
  const bubbles = new Map(); // client_id -> bubble element not yet delivered
  const blobUrls = new Map(); // attachment url -> Promise of a blob: URL (fetched with the token)
  let handoffBusy = false; // a "Talk to a person" request is on its way over REST
  let handoffAsked = false; // asked for this ticket: the button rests until the ticket is resolved

  // ---------------------------------------------------------------------------------------
  // DOM
  // ---------------------------------------------------------------------------------------
  const CSS = [
    ":host{all:initial}",
    "*,*::before,*::after{box-sizing:border-box}",
    "[hidden]{display:none!important}",
    ".sd{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;color:#1f2328;-webkit-text-size-adjust:100%}",
    "button,textarea{font:inherit;color:inherit;margin:0}",
    "button:focus-visible,textarea:focus-visible,.messages:focus-visible{outline:none;box-shadow:0 0 0 2px #fff,0 0 0 5px #1d4ed8}",
    ".launcher{position:fixed;right:20px;bottom:20px;z-index:2147483000;border:0;border-radius:999px;padding:12px 20px;background:#2457d6;color:#fff;font-weight:600;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25)}",
    ".launcher:hover{background:#1d47b3}",
    ".launcher.unread::after{content:'';position:absolute;top:0;right:0;width:12px;height:12px;border-radius:50%;background:#d1242f;border:2px solid #fff}",
    ".panel{position:fixed;right:20px;bottom:84px;z-index:2147483001;width:380px;height:580px;max-height:calc(100vh - 104px);display:flex;flex-direction:column;background:#fff;border-radius:12px;box-shadow:0 12px 40px rgba(0,0,0,.28);overflow:hidden}",
    ".header{display:flex;align-items:center;justify-content:space-between;padding:12px 14px;background:#2457d6;color:#fff}",
    ".title{margin:0;font-size:16px;font-weight:600}",
    ".close{border:0;background:transparent;color:#fff;font-size:22px;line-height:1;width:36px;height:36px;border-radius:8px;cursor:pointer}",
    ".close:hover{background:rgba(255,255,255,.15)}",
    ".conn{padding:6px 14px;background:#fff8c5;color:#4d2d00;font-size:13px}",
    ".status{margin:0;padding:8px 14px;background:#f6f8fa;border-bottom:1px solid #d8dee4;font-size:13px}",
    ".status:empty{display:none}",
    ".empty{margin:16px 14px 0;color:#57606a;text-align:center}",
    ".messages{flex:1 1 auto;min-height:0;overflow-y:auto;overscroll-behavior:contain;padding:12px;display:flex;flex-direction:column;gap:10px}",
    ".msg{display:flex;flex-direction:column;align-items:flex-start;align-self:flex-start;max-width:85%}",
    ".msg--customer{align-self:flex-end;align-items:flex-end}",
    ".who{font-size:12px;color:#57606a;margin-bottom:2px}",
    ".text{padding:8px 12px;border-radius:14px;background:#eef1f4;white-space:pre-wrap;overflow-wrap:anywhere;word-break:break-word}",
    ".msg--customer .text{background:#2457d6;color:#fff}",
    ".msg--bot .text{background:#e9f5ec}",
    ".msg[data-pending='true'] .text{opacity:.7}",
    ".msg[data-failed='true'] .text{background:#ffebe9;color:#82071e;border:1px solid #d1242f}",
    ".meta{font-size:11px;color:#57606a;margin-top:2px}",
    ".note{margin-left:6px}",
    ".msg[data-failed='true'] .note{color:#82071e}",
    ".typing{padding:2px 14px;font-size:12px;color:#57606a;font-style:italic}",
    ".error{padding:6px 14px;font-size:13px;color:#82071e;background:#ffebe9}",
    ".composer{display:flex;gap:8px;padding:10px;border-top:1px solid #d8dee4;align-items:flex-end}",
    ".composer textarea{flex:1;resize:none;min-height:42px;max-height:120px;padding:9px 10px;border:1px solid #8c959f;border-radius:8px;background:#fff}",
    ".send{border:0;border-radius:8px;padding:10px 16px;background:#2457d6;color:#fff;font-weight:600;cursor:pointer}",
    ".send:hover{background:#1d47b3}",
    ".attach{flex:none;border:1px solid #8c959f;border-radius:8px;width:42px;height:42px;padding:0;background:#fff;color:#1f2328;cursor:pointer;display:inline-flex;align-items:center;justify-content:center}",
    ".attach:hover{background:#f6f8fa}",
    ".attach svg{width:20px;height:20px}",
    ".handoff{border:1px solid rgba(255,255,255,.7);border-radius:999px;padding:4px 10px;margin-left:auto;margin-right:6px;background:transparent;color:#fff;font-size:12px;font-weight:600;cursor:pointer;white-space:nowrap}",
    ".handoff:hover{background:rgba(255,255,255,.15)}",
    ".handoff:disabled{opacity:.6;cursor:default;background:transparent}",
    ".text:empty{display:none}",
    ".atts{display:flex;flex-direction:column;gap:4px;margin-top:4px;max-width:100%}",
    ".msg--customer .atts{align-items:flex-end}",
    ".att-img{display:block;max-width:100%;max-height:240px;border-radius:10px;border:1px solid #d8dee4;background:#f6f8fa;min-width:48px;min-height:48px}",
    ".att-link,.att-file{display:inline-block;padding:8px 12px;border-radius:10px;border:1px solid #d8dee4;background:#fff;color:#1d4ed8;overflow-wrap:anywhere;text-decoration:underline;cursor:pointer}",
    ".att-file{color:#57606a;text-decoration:none;cursor:default}",
    ".vh{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}",
    // Phone width: the panel takes the whole screen and hides the launcher underneath it.
    "@media (max-width:479.98px){.panel{top:0;left:0;right:0;bottom:0;width:100%;height:100%;max-height:none;border-radius:0}" +
      ".sd.is-open .launcher{display:none}.composer textarea{font-size:16px}}",
  ].join("\n");

  // Builds an element; text goes through textContent only.
  function h(tag, attrs, text) {
    const el = document.createElement(tag);
    Object.keys(attrs || {}).forEach((k) => el.setAttribute(k, attrs[k]));
    if (text !== undefined && text !== null) el.textContent = String(text);
    return el;
  }

  let ui = null;

  function buildDom() {
    const host = document.createElement("supportdesk-widget"); // custom tag: page `div` rules never match
    const root = host.attachShadow({ mode: "open" });
    root.appendChild(h("style", {}, CSS));

    const wrap = h("div", { class: "sd" });
    const launcher = h("button", { type: "button", class: "launcher", "data-testid": "sd-launcher", "aria-expanded": "false", "aria-controls": "sd-panel" }, "Chat with us");
    const panel = h("section", { id: "sd-panel", class: "panel", "data-testid": "sd-panel", role: "dialog", "aria-labelledby": "sd-title" });
    panel.hidden = true;

    const header = h("div", { class: "header" });
    header.appendChild(h("h2", { id: "sd-title", class: "title" }, TITLE));
    const closeBtn = h("button", { type: "button", class: "close", "aria-label": "Close chat" }, "\u00d7");
    const handoff = h("button", { type: "button", class: "handoff", "data-testid": "sd-handoff" }, "Talk to a person");
    header.appendChild(handoff);
    header.appendChild(closeBtn);

    const conn = h("div", { class: "conn", "data-testid": "sd-connection", role: "status", "aria-live": "polite" });
    conn.hidden = true;
    const status = h("p", { class: "status", "data-testid": "sd-status", role: "status", "aria-live": "polite" });
    const empty = h("p", { class: "empty" }, "How can we help? Send us a message and we'll get back to you.");
    const messages = h("div", { class: "messages", "data-testid": "sd-messages", role: "log", "aria-live": "polite", "aria-label": "Conversation", tabindex: "0" });
    const typing = h("div", { class: "typing", "data-testid": "sd-typing", "aria-live": "polite" });
    typing.hidden = true;
    const error = h("div", { class: "error", "data-testid": "sd-error", role: "alert" });
    error.hidden = true;

    const form = h("form", { class: "composer", novalidate: "" });
    form.appendChild(h("label", { class: "vh", for: "sd-input" }, "Your message"));
    const input = h("textarea", { id: "sd-input", "data-testid": "sd-input", rows: "1", placeholder: "Write a message\u2026", autocomplete: "off" });
    const send = h("button", { type: "submit", class: "send", "data-testid": "sd-send" }, "Send");
    const fileInput = h("input", { type: "file", accept: "image/*,application/pdf", "data-testid": "sd-attach-input", tabindex: "-1", "aria-hidden": "true" });
    fileInput.hidden = true;
    const attach = h("button", { type: "button", class: "attach", "data-testid": "sd-attach", "aria-label": "Attach an image or PDF", title: "Attach an image or PDF" });
    attach.appendChild(paperclipIcon());
    form.appendChild(fileInput);
    form.appendChild(attach);
    form.appendChild(input);
    form.appendChild(send);

    [header, conn, status, empty, messages, typing, error, form].forEach((el) => panel.appendChild(el));
    wrap.appendChild(launcher);
    wrap.appendChild(panel);
    root.appendChild(wrap);
    document.body.appendChild(host);

    launcher.addEventListener("click", () => setOpen(!isOpen, true));
    closeBtn.addEventListener("click", () => setOpen(false, true));
    panel.addEventListener("keydown", (e) => {
      if (e.key === "Escape") setOpen(false, true);
    });
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      submit();
    });
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        submit();
      }
    });
    // Keys pressed inside the widget must not reach the host page's keyboard shortcuts. Stopped
    // at the wrapper, i.e. after the widget's own handlers (Escape, Enter) have run.
    ["keydown", "keyup", "keypress"].forEach((t) => {
      wrap.addEventListener(t, (e) => e.stopPropagation());
    });
    input.addEventListener("input", onCustomerTyping);
    attach.addEventListener("click", () => fileInput.click());
    fileInput.addEventListener("change", onFilePicked);
    handoff.addEventListener("click", requestHuman);

    return { host, root, wrap, launcher, panel, conn, status, empty, messages, typing, error, input, fileInput, handoff };
  }

  function paperclipIcon() {
    const NS = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    const path = document.createElementNS(NS, "path");
    path.setAttribute("d", "M21.4 11.1l-9.2 9.2a6 6 0 0 1-8.5-8.5l9.2-9.2a4 4 0 0 1 5.7 5.7l-9.2 9.2a2 2 0 0 1-2.8-2.8l8.5-8.5");
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", "currentColor");
    path.setAttribute("stroke-width", "2");
    path.setAttribute("stroke-linecap", "round");
    path.setAttribute("stroke-linejoin", "round");
    svg.appendChild(path);
    return svg;
  }

  // ---------------------------------------------------------------------------------------
  // Rendering
  // ---------------------------------------------------------------------------------------
  function formatTime(iso) {
    const d = new Date(iso);
    if (!iso || isNaN(d.getTime())) return "";
    const pad = (n) => (n < 10 ? "0" : "") + n;
    return pad(d.getHours()) + ":" + pad(d.getMinutes());
  }

  function buildBubble(sender, text) {
    const el = h("div", { class: "msg msg--" + sender, "data-testid": "sd-message", "data-sender": sender });
    el.appendChild(h("div", { class: "who" }, SENDER_LABELS[sender]));
    el.appendChild(h("div", { class: "text" }, text));
    const meta = h("div", { class: "meta" });
    meta.appendChild(h("time", { class: "time" }));
    meta.appendChild(h("span", { class: "note" }));
    el.appendChild(meta);
    return el;
  }

  function setNote(el, text) {
    el.querySelector(".note").textContent = text;
  }

  // Delivered messages stay in seq order above the still-pending local bubbles.
  function placeDelivered(el) {
    const firstPending = ui.messages.querySelector('[data-pending="true"]');
    ui.messages.insertBefore(el, firstPending);
  }

  function afterListChange() {
    ui.empty.hidden = ui.messages.childElementCount > 0;
    ui.messages.scrollTop = ui.messages.scrollHeight;
  }

  function renderPending(item, fileName) {
    const el = buildBubble("customer", item.text);
    el.setAttribute("data-client-id", item.client_id);
    el.setAttribute("data-pending", "true");
    if (fileName !== undefined) {
      // A file on its way: its name only; the picture comes back with the delivered event.
      const box = h("div", { class: "atts" });
      box.appendChild(h("span", { class: "att-file" }, "\ud83d\udcce " + fileName));
      el.insertBefore(box, el.querySelector(".meta"));
    }
    setNote(el, "Sending\u2026");
    bubbles.set(item.client_id, el);
    ui.messages.appendChild(el);
    afterListChange();
  }

  // Attachments are fetched with the conversation token (never a cookie, never in a URL) and
  // shown from a blob: URL. Only paths of the attachments endpoint are ever requested.
  function attachmentBlobUrl(path) {
    if (blobUrls.has(path)) return blobUrls.get(path);
    const conv = conversation;
    if (!conv) return Promise.reject(new Error("no conversation"));
    const promise = fetch(BASE + path, {
      headers: { Authorization: "Bearer " + conv.token },
      credentials: "omit",
    })
      .then((res) => {
        if (!res.ok) throw new Error("attachment " + res.status);
        return res.blob();
      })
      .then((blob) => URL.createObjectURL(blob));
    promise.catch(() => blobUrls.delete(path)); // a later render may try again
    blobUrls.set(path, promise);
    return promise;
  }

  function forgetBlobUrls() {
    blobUrls.forEach((promise) => promise.then((url) => URL.revokeObjectURL(url), () => {}));
    blobUrls.clear();
  }

  function formatSize(bytes) {
    const n = Number(bytes);
    if (!(n >= 0)) return "";
    if (n < 1024) return n + " B";
    if (n < 1024 * 1024) return Math.round(n / 1024) + " KB";
    return (n / (1024 * 1024)).toFixed(1) + " MB";
  }

  function buildAttachment(att) {
    if (!att || typeof att.url !== "string" || !ATTACHMENT_PATH.test(att.url)) return null;
    const name = typeof att.name === "string" && att.name ? att.name : "attachment";
    const type = typeof att.content_type === "string" ? att.content_type : "";
    if (/^image\//.test(type)) {
      const img = h("img", { class: "att-img", "data-testid": "sd-attachment", alt: name, title: name });
      img.addEventListener("load", () => {
        ui.messages.scrollTop = ui.messages.scrollHeight;
      });
      attachmentBlobUrl(att.url).then(
        (url) => {
          img.src = url;
        },
        () => {
          img.replaceWith(h("span", { class: "att-file", "data-testid": "sd-attachment" }, "Image unavailable: " + name));
        }
      );
      return img;
    }
    const size = formatSize(att.size);
    const link = h("a", { class: "att-link", "data-testid": "sd-attachment", href: "#", "data-name": name }, "\ud83d\udcc4 " + name + (size ? " (" + size + ")" : ""));
    link.addEventListener("click", (e) => {
      e.preventDefault();
      attachmentBlobUrl(att.url).then(
        (url) => {
          const a = h("a", { href: url, download: name });
          a.hidden = true;
          ui.root.appendChild(a);
          a.click();
          a.remove();
        },
        () => showError("The file could not be downloaded. Please try again.")
      );
    });
    return link;
  }

  function renderAttachments(el, list) {
    const old = el.querySelector(".atts");
    if (old) old.remove();
    if (!Array.isArray(list) || !list.length) return;
    const box = h("div", { class: "atts" });
    list.forEach((att) => {
      const node = buildAttachment(att);
      if (node) box.appendChild(node);
    });
    el.insertBefore(box, el.querySelector(".meta"));
  }

  function renderMessage(ev) {
    const sender = SENDER_LABELS.hasOwnProperty(ev.sender) ? ev.sender : "agent";
    const text = typeof ev.text === "string" ? ev.text : "";
    const clientId = typeof ev.client_id === "string" ? ev.client_id : null;
    let el = clientId ? bubbles.get(clientId) : null;
    if (clientId) {
      removeFromOutbox(clientId);
      bubbles.delete(clientId);
    }
    if (el) {
      // Our own pending bubble: it becomes the delivered one instead of a second copy.
      el.removeAttribute("data-pending");
      el.removeAttribute("data-failed");
      el.querySelector(".text").textContent = text;
    } else {
      el = buildBubble(sender, text);
      if (clientId) el.setAttribute("data-client-id", clientId);
    }
    renderAttachments(el, ev.attachments);
    if (sender === "agent" && typeof ev.author === "string" && ev.author.trim()) {
      el.querySelector(".who").textContent = ev.author; // the agent's first name, as text
    }
    el.setAttribute("data-seq", String(ev.seq));
    const time = el.querySelector(".time");
    time.textContent = formatTime(ev.created_at);
    if (typeof ev.created_at === "string") time.setAttribute("datetime", ev.created_at);
    setNote(el, "");
    placeDelivered(el);
    afterListChange();
    if (sender === "agent") hideTyping();
    if (sender === "customer" && clientId) clearError();
    if (sender !== "customer" && !isOpen && replayTarget === null) ui.launcher.classList.add("unread");
  }

  function statusText(status, poolName, agentName) {
    const team = typeof poolName === "string" && poolName.trim() ? poolName : "support";
    const agent = typeof agentName === "string" && agentName.trim() ? agentName.trim() : null;
    switch (status) {
      case "routing": return "We're finding the right team for your request\u2026";
      case "awaiting_customer": return "We need a little more information from you.";
      case "queued": return "Your request is with our " + team + " team.";
      case "assigned":
        return (agent ? agent + " from" : "A member of") + " our " + team + " team is handling your request.";
      case "in_review": return "A member of our team is reviewing your request.";
      case "resolved": return "Your request has been resolved. Write again if you need anything else.";
      default: return null; // unknown statuses (future extensions) leave the line as it is
    }
  }

  function renderStatus(ev) {
    if (ev.status === "resolved") setHandoffAsked(false); // a new request may ask again
    const text = statusText(ev.status, ev.pool_name, ev.agent);
    if (!text) return;
    ui.status.textContent = text;
    ui.status.setAttribute("data-status", String(ev.status));
  }

  function showTyping() {
    ui.typing.textContent = "An agent is typing\u2026";
    ui.typing.hidden = false;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(hideTyping, TYPING_SHOW_MS);
  }

  function hideTyping() {
    clearTimeout(typingTimer);
    ui.typing.textContent = "";
    ui.typing.hidden = true;
  }

  function showError(text) {
    ui.error.textContent = text;
    ui.error.hidden = false;
  }

  function clearError() {
    ui.error.textContent = "";
    ui.error.hidden = true;
  }

  function setState(next) {
    state = next;
    if (!ui) return;
    let text = "";
    if (state === "connecting") text = "Connecting\u2026";
    else if (state === "reconnecting") text = navigator.onLine === false ? OFFLINE_TEXT : "Reconnecting\u2026";
    else if (state === "offline" || state === "stopped") text = OFFLINE_TEXT;
    ui.conn.textContent = text;
    ui.conn.hidden = !text;
    ui.conn.setAttribute("data-state", state);
  }

  function setOpen(open, moveFocus) {
    isOpen = open;
    writeStorage("sessionStorage", KEY_OPEN, open ? "1" : "0");
    ui.panel.hidden = !open;
    ui.wrap.classList.toggle("is-open", open);
    ui.launcher.setAttribute("aria-expanded", String(open));
    if (open) {
      ui.launcher.classList.remove("unread");
      afterListChange();
      if (moveFocus) ui.input.focus();
      userResume(); // opening is a user action: connect if there is a conversation
    } else if (moveFocus) {
      ui.launcher.focus();
    }
  }

  // ---------------------------------------------------------------------------------------
  // Outbox
  // ---------------------------------------------------------------------------------------
  function saveOutbox() {
    writeStorage("localStorage", KEY_OUTBOX, outbox.length ? outbox : null);
  }

  function removeFromOutbox(clientId) {
    const before = outbox.length;
    outbox = outbox.filter((i) => i.client_id !== clientId);
    if (holds.has(clientId)) {
      clearTimeout(holds.get(clientId));
      holds.delete(clientId);
    }
    if (outbox.length !== before) saveOutbox();
  }

  function markFailed(clientId, message) {
    removeFromOutbox(clientId);
    const el = bubbles.get(clientId);
    if (!el) return;
    el.removeAttribute("data-pending");
    el.setAttribute("data-failed", "true");
    setNote(el, "not sent: " + message);
  }

  // rate_limited / unavailable: the item stays in the outbox and is retried after retry_after.
  function holdAndRetry(clientId, retryAfter) {
    const seconds = Number(retryAfter) > 0 ? Number(retryAfter) : 5;
    clearTimeout(holds.get(clientId));
    holds.set(clientId, setTimeout(() => {
      holds.delete(clientId);
      const item = outbox.find((i) => i.client_id === clientId);
      if (!item) return;
      if (wsReady) sendMessageFrame(item);
      else if (transport === "http") flushHttp();
      // otherwise the next welcome resends it
    }, seconds * 1000));
  }

  function uuid4() {
    const c = window.crypto;
    if (c && typeof c.randomUUID === "function") {
      try {
        return c.randomUUID(); // only in secure contexts
      } catch (e) {
        /* fall through */
      }
    }
    const b = new Array(16);
    for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    const hex = b.map((x) => (x + 0x100).toString(16).slice(1)).join("");
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" + hex.slice(16, 20) + "-" + hex.slice(20);
  }

  // ---------------------------------------------------------------------------------------
  // REST
  // ---------------------------------------------------------------------------------------
  // `body` is null, a JSON-able object, or FormData (a multipart upload).
  function api(method, path, body, token) {
    const headers = { Accept: "application/json" };
    const multipart = typeof FormData !== "undefined" && body instanceof FormData;
    if (body !== null && !multipart) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = "Bearer " + token; // the token never goes into a URL
    return fetch(BASE + path, {
      method: method,
      headers: headers,
      body: body === null ? undefined : multipart ? body : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    }).then((res) => {
      return res.text().then((t) => {
        let data = null;
        try {
          data = t ? JSON.parse(t) : null;
        } catch (e) {
          /* not JSON */
        }
        return { status: res.status, ok: res.ok, data: data, headers: res.headers };
      });
    });
  }

  function restError(res) {
    const err = (res.data && res.data.error) || {};
    return {
      code: typeof err.code === "string" ? err.code : "http_" + res.status,
      message: typeof err.message === "string" && err.message ? err.message : "The request failed (" + res.status + ").",
      retryAfter: err.retry_after || (res.data && res.data.retry_after) || (res.headers && res.headers.get("Retry-After")),
    };
  }

  function convPath(conv, tail) {
    return "/api/v1/conversations/" + encodeURIComponent(conv.id) + "/" + tail;
  }

  function ensureConversation() {
    if (conversation) return Promise.resolve(conversation);
    if (!creating) {
      creating = api("POST", "/api/v1/conversations/", {}, null)
        .then((res) => {
          const d = res.data;
          if (!res.ok || !d || d.id === undefined || typeof d.token !== "string") {
            throw new Error("create conversation: " + res.status);
          }
          conversation = { id: String(d.id), token: d.token };
          writeStorage("localStorage", KEY_CONVERSATION, conversation);
          lastSeq = 0; // a new conversation numbers its events from the start
          return conversation;
        })
        .finally(() => {
          creating = null;
        });
    }
    return creating;
  }

  // auth_failed / 4401 / REST 401-404: the stored conversation is gone or not ours any more.
  function forgetConversation() {
    conversation = null;
    writeStorage("localStorage", KEY_CONVERSATION, null);
    lastSeq = 0;
    replayTarget = null;
    stopPolling();
    // Start fresh: drop the old history, keep the bubbles still waiting in the outbox.
    Array.prototype.slice.call(ui.messages.querySelectorAll("[data-seq]")).forEach((el) => el.remove());
    forgetBlobUrls();
    setHandoffAsked(false);
    ui.status.textContent = "";
    afterListChange();
  }

  function onAuthFailed() {
    forgetConversation();
    showError("We couldn't resume your previous conversation. Send a message to start a new one.");
    stopped = true; // the next send (a user action) creates a new conversation
    setState("idle");
  }

  // ---------------------------------------------------------------------------------------
  // Incoming frames (socket and polling share this path)
  // ---------------------------------------------------------------------------------------
  function handleFrame(frame, via) {
    if (!frame || typeof frame !== "object") return;
    if (frame.type === "welcome") {
      if (via === "ws") onWelcome(frame);
      return;
    }
    if (typeof frame.seq === "number") {
      // Stored event: exactly-once rendering by seq.
      if (frame.seq <= lastSeq) return;
      lastSeq = frame.seq;
      if (frame.type === "message") renderMessage(frame);
      else if (frame.type === "status") renderStatus(frame);
      maybeFlushAfterReplay();
      return;
    }
    if (frame.type === "typing") {
      if (frame.sender === "agent") showTyping();
    } else if (frame.type === "error") {
      handleErrorFrame(frame);
    }
  }

  function handleErrorFrame(frame) {
    const code = typeof frame.code === "string" ? frame.code : "error";
    const message = typeof frame.message === "string" && frame.message ? frame.message : code.replace(/_/g, " ");
    if (code === "auth_failed") {
      onAuthFailed(); // the server closes the socket with 4401 right after
      return;
    }
    showError(message);
    const clientId = typeof frame.client_id === "string" ? frame.client_id : null;
    if (!clientId) return;
    // Nothing was stored: keep the message and send it again after retry_after.
    if (code === "rate_limited" || code === "unavailable") holdAndRetry(clientId, frame.retry_after);
    else markFailed(clientId, message);
  }

  // ---------------------------------------------------------------------------------------
  // WebSocket transport
  // ---------------------------------------------------------------------------------------
  function sendFrame(obj) {
    if (!sock || sock.readyState !== 1) return false;
    try {
      sock.send(JSON.stringify(obj));
      return true;
    } catch (e) {
      return false;
    }
  }

  function sendMessageFrame(item) {
    return sendFrame({ type: "message", client_id: item.client_id, text: item.text });
  }

  function onWelcome(frame) {
    wsReady = true;
    everConnected = true;
    failures = 0;
    attempt = 0;
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    if (transport === "http") {
      transport = "ws"; // the background probe got through: stop polling
      stopPolling();
    }
    setState("connected");
    // Resend the outbox only after the replay (events up to welcome.seq) has been handled, so
    // items the server already has are confirmed by the replay instead of being resent.
    replayTarget = typeof frame.seq === "number" ? frame.seq : 0;
    clearTimeout(replayTimer);
    replayTimer = setTimeout(() => {
      if (replayTarget !== null) {
        replayTarget = null;
        flushOutboxWs();
      }
    }, REPLAY_GRACE_MS);
    maybeFlushAfterReplay();
  }

  function maybeFlushAfterReplay() {
    if (replayTarget === null || !wsReady || lastSeq < replayTarget) return;
    replayTarget = null;
    clearTimeout(replayTimer);
    flushOutboxWs();
  }

  function flushOutboxWs() {
    outbox.forEach((item) => {
      if (!holds.has(item.client_id)) sendMessageFrame(item);
    });
  }

  function openSocket() {
    const background = transport === "http"; // a probe while polling: must not disturb the UI
    let ws;
    try {
      ws = new WebSocket(WS_URL);
    } catch (e) {
      if (background) scheduleBackgroundWs();
      else attemptFailed();
      return;
    }
    sock = ws;
    if (!background) setState(everConnected || failures ? "reconnecting" : "connecting");
    let welcomed = false;
    const timeout = setTimeout(() => {
      if (!welcomed) ws.close();
    }, WELCOME_TIMEOUT_MS);

    ws.onopen = () => {
      if (sock !== ws) return;
      if (!conversation) {
        ws.close();
        return;
      }
      sendFrame({ type: "hello", conversation: conversation.id, token: conversation.token, last_seq: lastSeq });
    };
    ws.onmessage = (ev) => {
      if (sock !== ws || typeof ev.data !== "string") return;
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      if (frame && frame.type === "welcome") {
        welcomed = true;
        clearTimeout(timeout);
      }
      handleFrame(frame, "ws");
    };
    ws.onerror = () => {
      /* a close event always follows */
    };
    ws.onclose = (ev) => {
      clearTimeout(timeout);
      if (sock !== ws) return;
      sock = null;
      wsReady = false;
      replayTarget = null;
      hideTyping();
      onSocketClosed(ev.code, welcomed);
    };
  }

  function onSocketClosed(code, welcomed) {
    if (code === 4401) {
      if (conversation) onAuthFailed(); // normally already done by the auth_failed frame
      return;
    }
    if (code === 4403) {
      if (transport === "http") return; // background probe refused: keep polling, stop probing
      stopped = true; // origin not allowed: wait for the user before trying again
      stopPolling();
      setState("stopped");
      return;
    }
    if (transport === "http") {
      scheduleBackgroundWs();
      return;
    }
    if (welcomed) failures = 0;
    else failures++;
    if (failures >= MAX_WS_FAILURES) switchToHttp();
    else scheduleReconnect();
  }

  function attemptFailed() {
    failures++;
    if (transport === "ws" && failures >= MAX_WS_FAILURES) {
      switchToHttp();
    } else if (transport === "http") {
      setState("offline");
      startPolling();
      scheduleBackgroundWs();
    } else {
      scheduleReconnect();
    }
  }

  function scheduleReconnect() {
    if (stopped) return;
    // Exponential back-off with jitter: 500 ms, 1 s, 2 s … capped at 10 s, each ±20 %.
    const base = Math.min(BACKOFF_CAP_MS, BACKOFF_START_MS * Math.pow(2, attempt));
    const delay = Math.min(BACKOFF_CAP_MS, base * (0.8 + Math.random() * 0.4));
    attempt++;
    setState("reconnecting");
    clearTimeout(reconnectTimer);
    reconnectTimer = setTimeout(() => {
      reconnectTimer = null;
      connect();
    }, delay);
  }

  // Start (or resume) whichever transport is current.
  function connect() {
    if (stopped || sock || creating) return;
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    if (!conversation) {
      if (!outbox.length) {
        setState("idle"); // nothing to say yet: a conversation is created on the first send
        return;
      }
      if (state === "idle") setState("connecting");
      ensureConversation().then(connect, attemptFailed);
      return;
    }
    if (transport === "http") {
      startPolling();
      scheduleBackgroundWs();
      return;
    }
    openSocket();
  }

  // ---------------------------------------------------------------------------------------
  // HTTP fallback transport
  // ---------------------------------------------------------------------------------------
  function switchToHttp() {
    transport = "http";
    failures = 0;
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    setState("reconnecting");
    startPolling();
    scheduleBackgroundWs();
  }

  function scheduleBackgroundWs() {
    if (!HAS_WS || stopped || transport !== "http" || sock || reconnectTimer) return;
    reconnectTimer = setTimeout(() => {
      reconnectTimer = null;
      if (transport !== "http" || stopped || sock) return;
      if (conversation) openSocket();
      else scheduleBackgroundWs();
    }, BACKGROUND_WS_MS);
  }

  function startPolling() {
    if (polling || stopped) return;
    polling = true;
    pollNow();
  }

  function stopPolling() {
    polling = false;
    clearTimeout(pollTimer);
    pollTimer = null;
  }

  function pollNow() {
    if (!polling) return;
    clearTimeout(pollTimer);
    pollTimer = null;
    if (pollInFlight) pollAgain = true;
    else pollOnce();
  }

  function schedulePoll(ms) {
    clearTimeout(pollTimer);
    pollTimer = polling ? setTimeout(pollOnce, ms) : null;
  }

  function pollOnce() {
    pollTimer = null;
    if (!polling || pollInFlight) return;
    if (!conversation) {
      if (!outbox.length) {
        stopPolling(); // restarted by connect() on the next send
        setState("idle");
        return;
      }
      ensureConversation().then(pollNow, () => {
        setState("offline");
        schedulePoll(POLL_MS);
      });
      return;
    }
    const conv = conversation;
    pollInFlight = true;
    api("GET", convPath(conv, "events/?after=" + lastSeq), null, conv.token)
      .then((res) => {
        if (conv !== conversation) return false;
        if (res.status === 401 || res.status === 404) {
          onAuthFailed();
          return false;
        }
        if (!res.ok || !res.data || !Array.isArray(res.data.events)) throw new Error("poll " + res.status);
        if (transport === "http") setState("connected");
        res.data.events.forEach((ev) => handleFrame(ev, "http"));
        flushHttp();
        // At most 200 events per call: ask again at once while the server has more.
        return res.data.events.length > 0 && typeof res.data.last_seq === "number" && res.data.last_seq > lastSeq;
      })
      .catch(() => {
        if (transport === "http") setState("offline");
        return false;
      })
      .then((more) => {
        pollInFlight = false;
        if (!polling) return;
        if (more || pollAgain) {
          pollAgain = false;
          schedulePoll(0);
        } else {
          schedulePoll(POLL_MS);
        }
      });
  }

  // POST every outbox item. On 200/201 it leaves the outbox but its bubble stays pending until
  // the event arrives through polling, so there is a single rendering path.
  function flushHttp() {
    if (transport !== "http" || !conversation) return;
    const conv = conversation;
    outbox.forEach((item) => {
      const id = item.client_id;
      if (httpInFlight.has(id) || holds.has(id)) return;
      httpInFlight.add(id);
      api("POST", convPath(conv, "messages/"), { text: item.text, client_id: id }, conv.token)
        .then((res) => {
          if (conv !== conversation) return;
          if (res.status === 200 || res.status === 201) {
            removeFromOutbox(id);
            pollNow();
            return;
          }
          if (res.status === 401 || res.status === 404) {
            onAuthFailed();
            return;
          }
          const err = restError(res);
          if (res.status === 429 || err.code === "rate_limited") {
            showError(err.message);
            holdAndRetry(id, err.retryAfter);
          } else if (res.status >= 400 && res.status < 500) {
            showError(err.message);
            markFailed(id, err.message);
          }
          // 5xx: keep it; the next poll tick retries
        })
        .catch(() => {
          /* network error: the next poll tick retries */
        })
        .then(() => httpInFlight.delete(id));
    });
  }

  // ---------------------------------------------------------------------------------------
  // User actions
  // ---------------------------------------------------------------------------------------
  // A user action lifts a 4401/4403 stop and (re)starts the current transport.
  function userResume() {
    liftStop();
    if (!conversation && !outbox.length) return;
    if (transport === "http") {
      if (conversation) flushHttp();
      connect();
    } else if (!sock && !reconnectTimer) {
      connect();
    }
  }

  function submit() {
    const text = ui.input.value.trim();
    if (!text) return;
    ui.input.value = "";
    clearError();
    const item = { client_id: uuid4(), text: text };
    outbox.push(item);
    saveOutbox();
    renderPending(item);
    if (wsReady) {
      if (replayTarget === null) sendMessageFrame(item); // else the post-replay flush sends it
      return;
    }
    userResume(); // disconnected: the item only queues until a welcome (or the HTTP fallback)
  }

  // A file is sent at once over REST (also while the socket is up), with whatever is in the
  // composer as its caption. It is not kept in the outbox: a reload cannot resend a file.
  function onFilePicked() {
    const file = ui.fileInput.files && ui.fileInput.files[0];
    ui.fileInput.value = ""; // choosing the same file again must fire `change` again
    if (!file) return;
    clearError();
    if (file.size === 0) return showError("That file is empty.");
    if (file.size > ATTACH_MAX_BYTES) return showError(ATTACH_TOO_LARGE);
    if (file.type && ATTACH_TYPES.indexOf(file.type) < 0) return showError(ATTACH_WRONG_TYPE);
    const caption = ui.input.value.trim();
    ui.input.value = "";
    const item = { client_id: uuid4(), text: caption };
    renderPending(item, file.name || "file");
    uploadFile(item, file);
  }

  function uploadFile(item, file) {
    const id = item.client_id;
    liftStop();
    ensureConversation()
      .then((conv) => {
        const form = new FormData();
        form.append("file", file, file.name || "file");
        if (item.text) form.append("text", item.text);
        form.append("client_id", id);
        return api("POST", convPath(conv, "attachments/"), form, conv.token).then((res) => {
          if (conv !== conversation) return;
          // Delivered: the bubble stays pending until its event arrives (socket or polling).
          if (res.status === 200 || res.status === 201) return;
          const err = restError(res);
          if (res.status === 401 || res.status === 404) {
            markFailed(id, "the conversation has ended");
            onAuthFailed();
            return;
          }
          showError(err.code === "file_too_large" ? ATTACH_TOO_LARGE : err.code === "unsupported_file_type" ? ATTACH_WRONG_TYPE : err.message);
          markFailed(id, err.message);
        });
      })
      .catch(() => {
        showError("The file could not be sent. Check your connection and try again.");
        markFailed(id, "network error");
      })
      .then(afterRestAction);
  }

  // "Talk to a person": a frame on a live socket, else the REST endpoint (which also works
  // before the first message, creating the conversation).
  function requestHuman() {
    if (handoffBusy || handoffAsked) return;
    clearError();
    if (wsReady && sendFrame({ type: "handoff" })) {
      setHandoffAsked(true);
      return;
    }
    handoffBusy = true;
    ui.handoff.disabled = true;
    liftStop();
    ensureConversation()
      .then((conv) =>
        api("POST", convPath(conv, "handoff/"), {}, conv.token).then((res) => {
          if (conv !== conversation) return;
          if (res.ok) {
            setHandoffAsked(true);
          } else if (res.status === 401 || res.status === 404) {
            onAuthFailed();
          } else {
            showError(restError(res).message);
          }
        })
      )
      .catch(() => showError("We couldn't reach support. Please try again."))
      .then(() => {
        handoffBusy = false;
        ui.handoff.disabled = handoffAsked;
        afterRestAction();
      });
  }

  function setHandoffAsked(asked) {
    handoffAsked = asked;
    if (!ui) return;
    ui.handoff.disabled = asked || handoffBusy;
    ui.handoff.setAttribute("aria-pressed", String(asked));
    ui.handoff.title = asked ? "We've asked a person to help you." : "";
  }

  function liftStop() {
    if (!stopped) return;
    stopped = false;
    failures = 0;
    attempt = 0;
  }

  // After a REST action the events it caused arrive through the current transport; open it if
  // that action created the conversation.
  function afterRestAction() {
    userResume();
    if (transport === "http") pollNow();
  }

  function onCustomerTyping() {
    if (!wsReady || !ui.input.value.trim()) return;
    const now = Date.now();
    if (now - lastTypingSent < TYPING_SEND_MS) return;
    if (sendFrame({ type: "typing" })) lastTypingSent = now;
  }

  // ---------------------------------------------------------------------------------------
  // Start-up and public API
  // ---------------------------------------------------------------------------------------
  function init() {
    if (ready) return;
    ui = buildDom();
    ready = true;
    setState("idle");
    outbox.forEach(renderPending); // messages queued on an earlier page are still on their way
    afterListChange();

    const remembered = readJSON("sessionStorage", KEY_OPEN); // 1, 0 or null (never set)
    let open = remembered === null ? START_OPEN : remembered === 1;
    if (openRequest !== null) open = openRequest;
    setOpen(open, false);
    // Items queued on an earlier page were already sent by the user: deliver them even if the
    // panel stays closed.
    if (!isOpen && outbox.length) connect();

    window.addEventListener("online", () => {
      if (transport === "http") pollNow();
      else if (!sock && reconnectTimer) connect();
      else setState(state);
    });
    window.addEventListener("offline", () => {
      setState(state); // refresh the indicator text
    });
  }

  window.SupportDeskWidget = Object.freeze({
    open() {
      if (ready) setOpen(true, true);
      else openRequest = true;
    },
    close() {
      if (ready) setOpen(false, true);
      else openRequest = false;
    },
    _debug() {
      return { state: state, lastSeq: lastSeq, outbox: outbox.length, outboxLength: outbox.length, transport: transport };
    },
  });

  if (document.body) init();
  else document.addEventListener("DOMContentLoaded", init);
})();
