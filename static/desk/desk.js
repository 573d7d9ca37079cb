/* SupportDesk agent desk: the small behaviours only a browser can do (docs/desk.md).
 *
 * The server renders the desk; htmx swaps the pieces in, from navigation requests and from
 * the desk socket (htmx's WebSocket extension on <body>). This script tells the socket what
 * the page shows, and keeps the connection badge, the SLA countdowns, typing, keyboard
 * shortcuts, canned replies, drafts and error messages. It never builds markup from data:
 * text goes through textContent and form values only.
 */
(function () {
  "use strict";

  const PING_MS = 25000;
  const TYPING_SEND_MS = 3000; // at most one agent typing frame per this interval
  const TYPING_SHOW_MS = 6000; // the customer's typing indicator fades after this
  const SOON_MS = 5 * 60 * 1000;
  const RETRY_MAX_MS = 30000;
  const EXTENSION_RETRIES = [1006, 1011, 1012, 1013]; // the ws extension reconnects on these

  let socket = null; // the ws extension's socket wrapper, once open
  let [everOpen, retries, sentView, lastTyping] = [false, 0, "", 0];
  let pendingDraft = null; // {id, ticket}: asked for, written in the background
  const unsent = new Map(); // ticket id -> reply text typed but not sent, across switches

  const $ = (testid, root) => (root || document).querySelector('[data-testid="' + testid + '"]');
  const main = () => document.getElementById("desk-main");
  const ticketId = () => Number(main() && main().dataset.ticket) || null;

  const send = (frame) => !!socket && (socket.send(JSON.stringify(frame)), true);

  // --- errors ------------------------------------------------------------------------------

  function showError(text, code) {
    const box = $("desk-error");
    box.querySelector(".error__text").textContent = text;
    if (code) box.setAttribute("data-code", code);
    else box.removeAttribute("data-code");
    box.hidden = false;
  }

  function clearError() {
    $("desk-error").hidden = true;
    $("desk-error").querySelector(".error__text").textContent = "";
  }

  // The staff API answers errors as {"error": {"code", "message", "fields"?}}.
  function apiError(xhr) {
    let error = {};
    try {
      error = JSON.parse(xhr.responseText).error || {};
    } catch (e) { /* not the API's error shape */ }
    let message = typeof error.message === "string" ? error.message : "The request failed (HTTP " + xhr.status + ").";
    if (error.fields && typeof error.fields === "object") {
      const details = Object.keys(error.fields).map((k) => k + ": " + [].concat(error.fields[k]).join(" "));
      if (details.length) message += " " + details.join("; ");
    }
    return { code: typeof error.code === "string" ? error.code : "error", message };
  }

  // --- the socket ----------------------------------------------------------------------------

  function setConnection(text, state) {
    $("desk-connection").textContent = text;
    $("desk-connection").setAttribute("data-state", state);
  }

  // What the page shows; the server follows that ticket and renders all of it (again).
  function sendView(force) {
    const el = main();
    if (!el) return;
    const view = { type: "view", tab: el.dataset.tab, filter: el.dataset.filter, ticket: ticketId() };
    const key = JSON.stringify(view);
    if ((force || key !== sentView) && send(view)) sentView = key;
  }

  document.addEventListener("htmx:wsConnecting", () => {
    setConnection(everOpen ? "Reconnecting…" : "Connecting…", everOpen ? "reconnecting" : "connecting");
  });

  document.addEventListener("htmx:wsOpen", (event) => {
    socket = event.detail.socketWrapper;
    everOpen = true;
    retries = 0;
    setConnection("Live", "open");
    sendView(true); // after a reconnect: events sent meanwhile are gone, render it all again
  });

  document.addEventListener("htmx:wsClose", (event) => {
    socket = null;
    const code = event.detail.event.code;
    if (code === 4401) {
      setConnection("Signed out", "closed");
      showError("Your session has ended. Sign in again to keep working.");
    } else if (code === 4403) {
      setConnection("Refused", "closed");
      showError("This address may not open the desk's live connection.");
    } else {
      setConnection("Reconnecting…", "reconnecting");
      if (EXTENSION_RETRIES.indexOf(code) === -1) {
        // Closed for another reason (say too many sockets): come back later, with jitter.
        const base = Math.min(RETRY_MAX_MS, 1000 * Math.pow(2, retries++));
        setTimeout(() => event.detail.socketWrapper.reconnect(), base / 2 + Math.random() * (base / 2));
      }
    }
  });

  setInterval(() => send({ type: "ping" }), PING_MS);

  // --- requests ------------------------------------------------------------------------------

  // A form's fields marked data-missing must be filled in before anything is sent.
  document.addEventListener("htmx:beforeRequest", (event) => {
    const elt = event.detail.elt;
    if (elt.tagName !== "FORM") return;
    const missing = Array.from(elt.querySelectorAll("[data-missing]")).find((f) => !f.value.trim());
    if (!missing) return;
    event.preventDefault();
    if (missing.dataset.missing) showError(missing.dataset.missing);
    missing.focus();
  });

  document.addEventListener("htmx:afterRequest", (event) => {
    const elt = event.detail.elt;
    const xhr = event.detail.xhr;
    if (elt.matches('[data-testid="desk-draft"]')) return draftAsked(elt, event.detail.successful, xhr);
    if (!event.detail.successful) return;
    if (elt.hasAttribute("data-reset")) elt.reset();
    if (elt.matches('[data-testid="desk-reroute-form"]')) elt.hidden = true;
    if (elt.type === "file") elt.value = "";
  });

  document.addEventListener("htmx:responseError", (event) => {
    if (event.detail.elt.matches('[data-testid="desk-draft"]')) return;
    const error = apiError(event.detail.xhr);
    showError(error.message, error.code);
  });

  // A new attempt clears the last error (its element may be gone before its answer comes).
  document.addEventListener("htmx:beforeSend", (event) => {
    if (event.detail.requestConfig.verb !== "get") clearError();
  });

  document.addEventListener("htmx:sendError", () => {
    showError("The server cannot be reached. Check your connection.", "network");
  });

  // Moving to another ticket keeps what was typed in the reply box of the one left.
  document.addEventListener("htmx:beforeSwap", (event) => {
    const box = $("desk-reply-input");
    if (event.detail.target.id === "desk-main" && box && ticketId()) unsent.set(ticketId(), box.value);
  });

  document.addEventListener("htmx:afterSettle", () => {
    const box = $("desk-reply-input");
    if (box && unsent.has(ticketId()) && !box.value) box.value = unsent.get(ticketId());
    sendView(false);
  });

  // --- clicks, keys and typing ----------------------------------------------------------------

  function insertIntoReply(text) {
    const box = $("desk-reply-input");
    if (!box || !text) return;
    box.value = box.value.trim() ? box.value.replace(/\s+$/, "") + "\n\n" + text : text;
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
  }

  function cannedText(id) {
    const select = $("desk-canned-select");
    const option = select && Array.from(select.options).find((o) => o.value === String(id));
    return option ? option.dataset.text : "";
  }

  document.addEventListener("change", (event) => {
    const select = event.target;
    if (!select.matches || !select.matches("[data-canned]")) return;
    insertIntoReply(cannedText(select.value));
    select.value = "";
  });

  document.addEventListener("click", (event) => {
    const target = event.target.closest ? event.target.closest("button") : null;
    if (!target) return;
    const form = $("desk-reroute-form");
    if (target.classList.contains("error__close")) clearError();
    else if (target.dataset.cannedId) insertIntoReply(cannedText(target.dataset.cannedId));
    else if (target.matches('[data-testid="desk-reroute"]') && form) {
      form.hidden = false;
      form.querySelector("select").focus();
    } else if (target.matches('[data-testid="desk-reroute-cancel"]') && form) form.hidden = true;
  });

  document.addEventListener("keydown", (event) => {
    const box = event.target;
    if (box.id !== "desk-reply-input" || event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
    event.preventDefault();
    box.form.requestSubmit();
  });

  document.addEventListener("input", (event) => {
    if (event.target.id !== "desk-reply-input" || !ticketId()) return;
    if (Date.now() - lastTyping >= TYPING_SEND_MS && send({ type: "typing", ticket: ticketId() })) lastTyping = Date.now();
  });

  // --- AI drafts: asked over REST (202, pending), delivered over the socket -------------------

  function draftButton(text, disabled) {
    if (!$("desk-draft")) return;
    $("desk-draft").textContent = text;
    $("desk-draft").disabled = disabled;
  }

  function draftError(reason) {
    $("desk-draft-error").textContent = "No draft available" + (reason ? ": " + reason : ".");
    $("desk-draft-error").hidden = false;
  }

  function draftAsked(button, ok, xhr) {
    $("desk-draft-error").hidden = true;
    if (!ok) return draftError(apiError(xhr).message);
    let draft = {};
    try {
      draft = JSON.parse(xhr.responseText);
    } catch (e) { return draftError(""); }
    pendingDraft = { id: draft.id, ticket: ticketId() };
    draftButton("Drafting…", true);
    // The socket may have brought it back before this answer did.
    const slot = document.getElementById("t" + ticketId() + "-draft");
    if (slot) draftArrived(slot);
  }

  function draftArrived(slot) {
    if (!pendingDraft || Number(slot.dataset.draftId) !== pendingDraft.id || slot.dataset.status === "pending") return;
    const text = slot.querySelector(".draft-result__text").textContent;
    if (slot.dataset.status === "ready" && text) {
      // The agent edits and sends it; a draft is never sent by itself.
      $("desk-reply-input").value = text;
      $("desk-reply-input").focus();
    } else {
      draftError(slot.querySelector(".draft-result__error").textContent || "the model gave no answer");
    }
    pendingDraft = null;
    draftButton("AI draft", false);
  }

  // --- what arrives: SLA clocks, times, typing, scrolling ---------------------------------------

  function clock(ms) {
    const total = Math.floor(Math.abs(ms) / 1000);
    const [hours, minutes] = [Math.floor(total / 3600), Math.floor((total % 3600) / 60)];
    const pad = (n) => (n < 10 ? "0" : "") + n;
    return (hours ? hours + ":" + pad(minutes) : String(minutes)) + ":" + pad(total % 60);
  }

  function tick(el) {
    const left = new Date(el.dataset.due).getTime() - Date.now();
    if (isNaN(left)) return;
    el.textContent = left >= 0 ? "SLA " + clock(left) : "Overdue " + clock(left);
    el.classList.toggle("sla--overdue", left < 0);
    el.classList.toggle("sla--soon", left >= 0 && left < SOON_MS);
  }

  function localTime(el) {
    const d = new Date(el.getAttribute("datetime"));
    if (isNaN(d.getTime())) return;
    const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    const day = d.toDateString() === new Date().toDateString() ? "" : d.toLocaleDateString([], { month: "short", day: "numeric" }) + " ";
    el.textContent = day + time;
  }

  function within(root, selector) {
    return (root.matches(selector) ? [root] : []).concat(Array.from(root.querySelectorAll(selector)));
  }

  let typingTimer = null;
  htmx.onLoad((root) => {
    within(root, ".sla[data-due]").forEach(tick);
    within(root, "time[datetime]").forEach(localTime);
    within(root, ".draft-result[data-draft-id]").forEach(draftArrived);
    within(root, ".typing:not([hidden])").forEach((el) => {
      clearTimeout(typingTimer);
      typingTimer = setTimeout(() => (el.hidden = true), TYPING_SHOW_MS);
    });
    within(root, ".messages").forEach((list) => (list.scrollTop = list.scrollHeight));
    within(root, ".msg").forEach((msg) => {
      const list = msg.parentElement;
      const below = list.scrollHeight - list.scrollTop - list.clientHeight - msg.offsetHeight;
      if (below < 40 || msg.dataset.sender === "agent") list.scrollTop = list.scrollHeight;
    });
    if (pendingDraft && pendingDraft.ticket !== ticketId()) {
      pendingDraft = null; // the agent went to another ticket: its draft stays in the trail
      draftButton("AI draft", false);
    }
  });

  setInterval(() => document.querySelectorAll(".sla[data-due]").forEach(tick), 1000);
})();
