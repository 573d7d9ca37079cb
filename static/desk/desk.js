/* SupportDesk agent desk: queues and one ticket, kept live by /ws/desk/ (docs/desk.md).
 *
 * Dependency-free. Every action goes through the staff REST API; the socket only says what
 * changed (and streams the followed ticket's conversation). All user text is rendered with
 * textContent: nothing from the server is ever parsed as HTML.
 */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("desk-config").textContent);
  const API = config.api;
  const PING_MS = 25000;
  const TYPING_SEND_MS = 3000; // at most one agent typing frame per this interval
  const TYPING_SHOW_MS = 6000; // the customer's typing indicator fades after this
  const REFRESH_MS = 150; // bursts of ticket events become one refetch
  const RETRY_MAX_MS = 30000;
  const OPEN_STATUSES = ["queued", "assigned"];
  const STATUS_LABELS = {
    routing: "Routing",
    awaiting_customer: "Awaiting customer",
    queued: "Queued",
    assigned: "Assigned",
    in_review: "In review",
    resolved: "Resolved",
  };

  const state = {
    overview: null,
    tab: sessionStorage.getItem("desk:tab") || "mine",
    filter: sessionStorage.getItem("desk:filter") || "open",
    listSeq: 0,
    ticketId: null,
    detail: null,
    detailSeq: 0,
    accessLost: false,
    seen: { messages: new Set(), notes: new Set(), activities: new Set() },
    canned: new Map(),
    unsent: new Map(), // ticket id -> reply text typed but not sent, kept across switches
    ws: null,
    retry: 0,
    pingTimer: null,
    retryTimer: null,
    everConnected: false,
    stopped: false,
    lastTypingSent: 0,
    typingTimer: null,
    timers: new Map(),
    pendingDraft: null, // {id, ticket, since}: a draft asked for, written in the background
  };

  // -------------------------------------------------------------------------------------
  // DOM helpers
  // -------------------------------------------------------------------------------------
  function $(testid, root) {
    return (root || document).querySelector('[data-testid="' + testid + '"]');
  }

  // Builds an element; text goes through textContent only.
  function h(tag, attrs, text) {
    const el = document.createElement(tag);
    Object.keys(attrs || {}).forEach((k) => {
      if (attrs[k] !== null && attrs[k] !== undefined && attrs[k] !== false) el.setAttribute(k, attrs[k]);
    });
    if (text !== undefined && text !== null) el.textContent = String(text);
    return el;
  }

  function str(value, fallback) {
    return typeof value === "string" && value !== "" ? value : fallback === undefined ? "" : fallback;
  }

  function formatTime(iso) {
    const d = new Date(iso);
    if (!iso || isNaN(d.getTime())) return "";
    const sameDay = d.toDateString() === new Date().toDateString();
    const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    return sameDay ? time : d.toLocaleDateString([], { month: "short", day: "numeric" }) + " " + time;
  }

  function timeEl(iso) {
    const el = h("time", { datetime: typeof iso === "string" ? iso : null }, formatTime(iso));
    return el;
  }

  function later(key, fn, ms) {
    clearTimeout(state.timers.get(key));
    state.timers.set(key, setTimeout(() => { state.timers.delete(key); fn(); }, ms));
  }

  const ui = {
    main: document.querySelector("main.desk"),
    conn: $("desk-connection"),
    presence: $("desk-presence"),
    error: $("desk-error"),
    tabs: $("desk-tabs"),
    filter: $("desk-filter"),
    queue: $("desk-queue"),
    queueEmpty: $("desk-queue-empty"),
    ticket: $("desk-ticket"),
    placeholder: $("desk-placeholder"),
    accessLost: $("desk-access-lost"),
    title: $("desk-ticket-title"),
    status: $("desk-status"),
    pool: $("desk-pool"),
    assignee: $("desk-assignee"),
    sla: $("desk-sla"),
    actions: $("desk-actions"),
    rerouteBtn: $("desk-reroute"),
    rerouteForm: $("desk-reroute-form"),
    reroutePool: $("desk-reroute-pool"),
    rerouteReason: $("desk-reroute-reason"),
    messages: $("desk-messages"),
    injection: $("desk-injection"),
    elsewhere: $("desk-elsewhere-list"),
    typing: $("desk-typing"),
    replyForm: $("desk-reply"),
    replyInput: $("desk-reply-input"),
    replySend: $("desk-reply-send"),
    canned: $("desk-canned-select"),
    attach: $("desk-attach"),
    draft: $("desk-draft"),
    draftError: $("desk-draft-error"),
    notes: $("desk-notes"),
    noteForm: $("desk-note-form"),
    noteInput: $("desk-note-input"),
    trail: $("desk-trail"),
    context: $("desk-context"),
    activity: $("desk-activity"),
  };

  // -------------------------------------------------------------------------------------
  // REST
  // -------------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : config.csrf_token;
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    let payload;
    if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
    if (body instanceof FormData) {
      payload = body;
    } else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(API + path, { method, headers, body: payload, credentials: "same-origin" });
    } catch (e) {
      throw new ApiError(0, "network", "The server cannot be reached. Check your connection.");
    }
    let data = null;
    try {
      data = await response.json();
    } catch (e) {
      data = null;
    }
    if (!response.ok) {
      const error = data && data.error ? data.error : {};
      let message = str(error.message, "The request failed (HTTP " + response.status + ").");
      if (error.fields && typeof error.fields === "object") {
        const details = Object.keys(error.fields).map((k) => k + ": " + [].concat(error.fields[k]).join(" "));
        if (details.length) message += " " + details.join("; ");
      }
      throw new ApiError(response.status, str(error.code, "error"), message);
    }
    return data;
  }

  function showError(error) {
    const text = error instanceof Error ? error.message : String(error);
    ui.error.querySelector(".error__text").textContent = text;
    ui.error.hidden = false;
    if (error instanceof ApiError && error.code) ui.error.setAttribute("data-code", error.code);
    else ui.error.removeAttribute("data-code");
  }

  function clearError() {
    ui.error.hidden = true;
    ui.error.querySelector(".error__text").textContent = "";
  }

  // Runs an action; API errors go to the visible error area.
  async function attempt(fn) {
    try {
      const result = await fn();
      return result;
    } catch (error) {
      showError(error);
      return undefined;
    }
  }

  // -------------------------------------------------------------------------------------
  // Overview: tabs, counts, presence
  // -------------------------------------------------------------------------------------
  async function loadOverview() {
    const overview = await attempt(() => api("GET", "desk/"));
    if (!overview) return;
    state.overview = overview;
    renderTabs();
    setPresence(overview.presence);
    ui.draft.hidden = overview.drafts_enabled !== true;
  }

  function tabList() {
    const overview = state.overview || { pools: [], mine: 0 };
    const tabs = [{ key: "mine", label: "Mine", count: overview.mine }];
    if (config.supervisor) tabs.push({ key: "all", label: "All pools" });
    (overview.pools || []).forEach((pool) => {
      tabs.push({
        key: "pool:" + pool.slug,
        label: pool.name,
        count: pool.queued,
        breached: pool.breached,
        online: pool.members_online,
      });
    });
    return tabs;
  }

  function renderTabs() {
    const tabs = tabList();
    if (!tabs.some((t) => t.key === state.tab)) state.tab = "mine";
    ui.tabs.replaceChildren(
      ...tabs.map((tab) => {
        const button = h("button", {
          type: "button",
          role: "tab",
          class: "tab",
          "data-testid": "desk-tab",
          "data-tab": tab.key,
          "aria-selected": String(tab.key === state.tab),
        });
        button.appendChild(h("span", { class: "tab__label" }, tab.label));
        if (typeof tab.count === "number") {
          const text = tab.key === "mine" ? String(tab.count) : tab.count + " queued";
          const title = tab.key === "mine" ? "assigned to you" : "waiting in the queue";
          button.appendChild(h("span", { class: "count", title: title, "data-testid": "desk-tab-count" }, text));
        }
        if (tab.breached) {
          button.appendChild(h("span", { class: "count count--breached", title: "SLA breached" }, tab.breached + " late"));
        }
        if (typeof tab.online === "number") {
          button.appendChild(h("span", { class: "online", title: "agents online" }, tab.online + " online"));
        }
        button.addEventListener("click", () => selectTab(tab.key));
        return button;
      })
    );
  }

  function selectTab(key) {
    state.tab = key;
    sessionStorage.setItem("desk:tab", key);
    renderTabs();
    loadList();
  }

  function setPresence(presence) {
    if (presence === "online" || presence === "away") ui.presence.value = presence;
    ui.presence.setAttribute("data-presence", str(presence, "offline"));
  }

  // -------------------------------------------------------------------------------------
  // Queue list
  // -------------------------------------------------------------------------------------
  function listQueries() {
    const base = new URLSearchParams();
    if (state.tab === "mine") base.set("assignee", "me");
    else if (state.tab.startsWith("pool:")) base.set("pool", state.tab.slice(5));
    base.set("limit", "100");
    const statuses = state.filter === "open" ? OPEN_STATUSES : state.filter === "all" ? [null] : [state.filter];
    return statuses.map((status) => {
      const params = new URLSearchParams(base);
      if (status) params.set("status", status);
      if (status === "queued") params.set("ordering", "queue");
      return "tickets/?" + params.toString();
    });
  }

  async function loadList() {
    const seq = ++state.listSeq;
    const pages = await attempt(() => Promise.all(listQueries().map((q) => api("GET", q))));
    if (!pages || seq !== state.listSeq) return; // a newer load is on its way
    const rows = [];
    pages.forEach((page) => (page.results || []).forEach((t) => rows.push(t)));
    renderList(rows);
  }

  function renderList(rows) {
    ui.queue.replaceChildren(...rows.map(renderRow));
    ui.queueEmpty.hidden = rows.length > 0;
  }

  function customerName(ticket) {
    return str(ticket && ticket.customer && ticket.customer.name, "Anonymous customer");
  }

  function personName(person) {
    if (!person) return "";
    return str(person.name, str(person.username, "someone"));
  }

  function renderRow(ticket) {
    const li = h("li", {
      class: "row",
      "data-testid": "desk-ticket-row",
      "data-ticket-id": String(ticket.id),
      "data-status": str(ticket.status),
      "aria-current": ticket.id === state.ticketId ? "true" : null,
    });
    const button = h("button", { type: "button", class: "row__open" });
    const top = h("span", { class: "row__top" });
    top.appendChild(h("span", { class: "row__id" }, "#" + ticket.id));
    top.appendChild(h("span", { class: "row__customer" }, customerName(ticket)));
    top.appendChild(h("span", { class: "badge badge--" + str(ticket.status), "data-testid": "desk-row-status" }, STATUS_LABELS[ticket.status] || ticket.status));
    button.appendChild(top);
    const last = ticket.last_message;
    if (last) {
      const preview = h("span", { class: "row__preview" });
      preview.appendChild(h("span", { class: "row__sender" }, senderLabel(last.sender, null, ticket) + ": "));
      preview.appendChild(h("span", {}, str(last.text, "(attachment)")));
      button.appendChild(preview);
    }
    const bottom = h("span", { class: "row__bottom" });
    bottom.appendChild(h("span", { class: "row__pool" }, ticket.pool ? ticket.pool.name : "No pool"));
    if (ticket.assignee) bottom.appendChild(h("span", { class: "row__assignee" }, "→ " + personName(ticket.assignee)));
    if (ticket.human_requested) bottom.appendChild(h("span", { class: "flag" }, "asked for a person"));
    bottom.appendChild(slaEl(ticket, "desk-row-sla"));
    button.appendChild(bottom);
    button.addEventListener("click", () => openTicket(ticket.id));
    li.appendChild(button);
    return li;
  }

  // -------------------------------------------------------------------------------------
  // SLA timers
  // -------------------------------------------------------------------------------------
  function slaEl(ticket, testid) {
    const el = h("span", { class: "sla", "data-testid": testid });
    setSla(el, ticket);
    return el;
  }

  function setSla(el, ticket) {
    el.removeAttribute("data-due");
    el.removeAttribute("data-breached");
    el.removeAttribute("data-answered");
    el.className = "sla";
    if (!ticket) {
      el.textContent = "";
      return;
    }
    if (ticket.first_response_at) {
      el.setAttribute("data-answered", "true");
      el.textContent = ticket.sla_breached_at ? "Answered late" : "Answered";
      el.classList.add(ticket.sla_breached_at ? "sla--late" : "sla--ok");
    } else if (ticket.sla_breached_at) {
      el.setAttribute("data-breached", "true");
      el.textContent = "SLA breached";
      el.classList.add("sla--breached");
    } else if (ticket.sla_due_at && ticket.status !== "resolved") {
      el.setAttribute("data-due", ticket.sla_due_at);
      tickOne(el);
    } else {
      el.textContent = "";
    }
  }

  function clock(ms) {
    const total = Math.floor(Math.abs(ms) / 1000);
    const hours = Math.floor(total / 3600);
    const minutes = Math.floor((total % 3600) / 60);
    const seconds = total % 60;
    const pad = (n) => (n < 10 ? "0" : "") + n;
    return (hours ? hours + ":" + pad(minutes) : String(minutes)) + ":" + pad(seconds);
  }

  function tickOne(el) {
    const due = new Date(el.getAttribute("data-due")).getTime();
    if (isNaN(due)) return;
    const left = due - Date.now();
    el.textContent = left >= 0 ? "SLA " + clock(left) : "Overdue " + clock(left);
    el.classList.toggle("sla--overdue", left < 0);
    el.classList.toggle("sla--soon", left >= 0 && left < 5 * 60 * 1000);
  }

  function tickAll() {
    document.querySelectorAll(".sla[data-due]").forEach(tickOne);
  }

  // -------------------------------------------------------------------------------------
  // One ticket
  // -------------------------------------------------------------------------------------
  async function openTicket(id) {
    if (state.ticketId !== null && state.ticketId !== id) send({ type: "unsubscribe", ticket: state.ticketId });
    const switched = state.ticketId !== id;
    if (switched && state.ticketId !== null) state.unsent.set(state.ticketId, ui.replyInput.value);
    state.ticketId = id;
    state.accessLost = false;
    state.detail = null;
    if (switched) {
      resetTicketView();
      ui.replyInput.value = state.unsent.get(id) || "";
      state.unsent.delete(id);
    }
    ui.ticket.hidden = false;
    ui.placeholder.hidden = true;
    ui.main.setAttribute("data-view", "ticket");
    ui.queue.querySelectorAll('[data-testid="desk-ticket-row"]').forEach((row) => {
      if (row.getAttribute("data-ticket-id") === String(id)) row.setAttribute("aria-current", "true");
      else row.removeAttribute("aria-current");
    });
    // Follow first: what happens while the detail loads arrives over the socket and is merged.
    send({ type: "subscribe", ticket: id });
    await Promise.all([loadDetail(), loadCanned()]);
    if (window.matchMedia("(max-width: 799.98px)").matches) ui.ticket.scrollIntoView({ block: "start" });
  }

  function resetTicketView() {
    state.seen = { messages: new Set(), notes: new Set(), activities: new Set() };
    [ui.messages, ui.elsewhere, ui.notes, ui.trail, ui.context, ui.activity].forEach((el) => el.replaceChildren());
    ui.accessLost.hidden = true;
    ui.accessLost.textContent = "";
    ui.title.textContent = "";
    ui.status.textContent = "";
    ui.pool.textContent = "";
    ui.assignee.textContent = "";
    setSla(ui.sla, null);
    ui.rerouteForm.hidden = true;
    hideDraftError();
    hideTyping();
    ui.ticket.removeAttribute("data-access-lost");
    setDisabled(false);
  }

  async function loadDetail() {
    const id = state.ticketId;
    if (id === null || state.accessLost) return;
    const seq = ++state.detailSeq;
    let detail;
    try {
      detail = await api("GET", "tickets/" + id + "/");
    } catch (error) {
      if (seq !== state.detailSeq || state.ticketId !== id) return;
      if (error instanceof ApiError && error.status === 404) showAccessLost(id);
      else showError(error);
      return;
    }
    if (seq !== state.detailSeq || state.ticketId !== id || state.accessLost) return;
    state.detail = detail;
    renderDetail(detail);
  }

  // Messages, notes and activity are append-only: a refetch adds what is missing, in order,
  // without redrawing what is shown (no flicker, no image reloads, scroll position kept).
  function renderDetail(detail) {
    renderSummary(detail);
    renderElsewhere(detail.elsewhere || []);
    (detail.messages || []).forEach(appendMessage);
    (detail.notes || []).forEach(appendNote);
    (detail.activities || []).forEach(appendActivity);
    renderTrail(detail.decisions || [], detail.labels || []);
    renderContext(detail.context);
  }

  // The customer's messages on other teams' tickets: which team and how many, never the text.
  function renderElsewhere(shares) {
    const lines = shares.map((share) =>
      h(
        "p",
        { class: "muted", "data-testid": "desk-elsewhere" },
        share.messages + (share.messages === 1 ? " message" : " messages") + " with " +
          (share.pool ? "the " + share.pool + " team" : "a team not chosen yet")
      )
    );
    ui.elsewhere.replaceChildren(...lines);
  }

  // Keeps a list in id order whichever of REST or the socket delivered an item first.
  function insertById(container, el, id) {
    const next = Array.prototype.find.call(container.children, (child) => Number(child.getAttribute("data-id")) > id);
    el.setAttribute("data-id", String(id));
    container.insertBefore(el, next || null);
  }

  function renderSummary(ticket) {
    ui.ticket.setAttribute("data-ticket-id", String(ticket.id));
    ui.title.textContent = "#" + ticket.id + " · " + customerName(ticket);
    ui.status.textContent = STATUS_LABELS[ticket.status] || str(ticket.status);
    ui.status.className = "badge badge--" + str(ticket.status);
    ui.status.setAttribute("data-status", str(ticket.status));
    ui.pool.textContent = ticket.pool ? "Pool: " + ticket.pool.name : "No pool";
    ui.assignee.textContent = ticket.assignee ? "Assigned to " + personName(ticket.assignee) : "Unassigned";
    ui.injection.hidden = ticket.injection_suspected !== true;
    setSla(ui.sla, ticket);
    renderActions(ticket);
  }

  function isMine(ticket) {
    return !!(ticket.assignee && ticket.assignee.id === config.user.id);
  }

  function renderActions(ticket) {
    const open = OPEN_STATUSES.indexOf(ticket.status) !== -1;
    const show = {
      claim: ticket.status === "queued",
      unassign: ticket.status === "assigned" && (isMine(ticket) || config.supervisor),
      resolve: open || (config.supervisor && ticket.status !== "resolved"),
      reopen: ticket.status === "resolved",
    };
    ui.actions.querySelectorAll("[data-action]").forEach((button) => {
      button.hidden = !show[button.getAttribute("data-action")];
    });
    ui.rerouteBtn.hidden = !open;
    if (!open) ui.rerouteForm.hidden = true;
  }

  function setDisabled(disabled) {
    ui.ticket.querySelectorAll("button, textarea, select, input").forEach((el) => {
      if (el.getAttribute("data-testid") !== "desk-back") el.disabled = disabled;
    });
  }

  function showAccessLost(id) {
    if (state.ticketId !== id) return;
    state.accessLost = true;
    state.detail = null;
    resetTicketView();
    state.accessLost = true;
    ui.ticket.setAttribute("data-access-lost", "true");
    ui.title.textContent = "#" + id;
    ui.accessLost.textContent =
      "Ticket #" + id + " is no longer in your pools (it was moved or closed to you). You cannot see or answer it any more.";
    ui.accessLost.hidden = false;
    ui.actions.querySelectorAll("button").forEach((b) => (b.hidden = true));
    setDisabled(true);
    later("list", loadList, REFRESH_MS);
    later("overview", loadOverview, REFRESH_MS);
  }

  // --- conversation ---------------------------------------------------------------------

  function senderLabel(sender, author, ticket) {
    if (sender === "customer") return customerName(ticket || state.detail);
    if (sender === "bot") return "Bot";
    return str(author, "Agent");
  }

  function safeAttachmentUrl(url) {
    // Only our own attachment endpoint: never a javascript: or foreign URL from data.
    return typeof url === "string" && /^\/api\/v1\/attachments\/\d+\/$/.test(url) ? url : null;
  }

  function attachmentEl(file) {
    const url = safeAttachmentUrl(file && file.url);
    const name = str(file && file.name, "attachment");
    const wrap = h("div", { class: "attachment", "data-testid": "desk-attachment" });
    if (!url) {
      wrap.textContent = name;
      return wrap;
    }
    if (/^image\//.test(str(file.content_type))) {
      const link = h("a", { href: url, target: "_blank", rel: "noopener" });
      link.appendChild(h("img", { src: url, alt: name, loading: "lazy" }));
      wrap.appendChild(link);
    } else {
      const label = name + (typeof file.size === "number" ? " (" + Math.ceil(file.size / 1024) + " KB)" : "");
      wrap.appendChild(h("a", { href: url, target: "_blank", rel: "noopener" }, label));
    }
    return wrap;
  }

  // Adds a message once. The REST answer and the socket event of one message may arrive in
  // either order: a copy that carries files the shown one lacks redraws it in place.
  function appendMessage(message) {
    if (!message || message.id === undefined) return;
    const files = Array.isArray(message.attachments) ? message.attachments.length : 0;
    let existing = null;
    if (state.seen.messages.has(message.id)) {
      existing = ui.messages.querySelector('[data-message-id="' + String(Number(message.id)) + '"]');
      if (!existing || existing.querySelectorAll('[data-testid="desk-attachment"]').length >= files) return;
    }
    state.seen.messages.add(message.id);
    const sender = ["customer", "bot", "agent"].indexOf(message.sender) !== -1 ? message.sender : "agent";
    const el = h("article", { class: "msg msg--" + sender, "data-testid": "desk-message", "data-sender": sender, "data-message-id": String(message.id) });
    const head = h("header", { class: "msg__head" });
    head.appendChild(h("span", { class: "msg__who" }, senderLabel(sender, message.author)));
    head.appendChild(timeEl(message.created_at));
    el.appendChild(head);
    if (str(message.text)) el.appendChild(h("p", { class: "msg__text" }, message.text));
    (Array.isArray(message.attachments) ? message.attachments : []).forEach((file) => el.appendChild(attachmentEl(file)));
    if (existing) {
      el.setAttribute("data-id", existing.getAttribute("data-id"));
      existing.replaceWith(el);
      return;
    }
    const atBottom = ui.messages.scrollHeight - ui.messages.scrollTop - ui.messages.clientHeight < 40;
    insertById(ui.messages, el, Number(message.id));
    if (atBottom || sender === "agent") ui.messages.scrollTop = ui.messages.scrollHeight;
    if (sender === "customer") hideTyping();
  }

  function showTyping() {
    ui.typing.hidden = false;
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(hideTyping, TYPING_SHOW_MS);
  }

  function hideTyping() {
    clearTimeout(state.typingTimer);
    ui.typing.hidden = true;
  }

  // --- notes, activity, trail, context ---------------------------------------------------

  function appendNote(note) {
    if (!note || state.seen.notes.has(note.id)) return;
    state.seen.notes.add(note.id);
    const li = h("li", { class: "note", "data-testid": "desk-note", "data-note-id": String(note.id) });
    const head = h("div", { class: "note__head" });
    head.appendChild(h("span", { class: "note__author" }, str(note.author, "staff")));
    head.appendChild(timeEl(note.created_at));
    li.appendChild(head);
    li.appendChild(h("p", { class: "note__text" }, note.text));
    insertById(ui.notes, li, Number(note.id));
  }

  function activityDetail(data) {
    if (!data || typeof data !== "object") return "";
    const parts = [];
    if (data.from || data.to) parts.push(str(data.from, "?") + " → " + str(data.to, "?"));
    if (data.pool && !data.to) parts.push(String(data.pool));
    if (data.assignee) parts.push("to " + String(data.assignee));
    if (data.reason) parts.push("“" + String(data.reason) + "”");
    return parts.join(" ");
  }

  function appendActivity(item) {
    if (!item || state.seen.activities.has(item.id)) return;
    state.seen.activities.add(item.id);
    const li = h("li", { "data-testid": "desk-activity-item", "data-kind": str(item.kind) });
    li.appendChild(timeEl(item.created_at));
    li.appendChild(h("span", { class: "activity__label" }, " " + str(item.label, item.kind)));
    if (item.actor) li.appendChild(h("span", { class: "activity__actor" }, " by " + item.actor));
    const detail = activityDetail(item.data);
    if (detail) li.appendChild(h("span", { class: "activity__detail" }, " — " + detail));
    insertById(ui.activity, li, Number(item.id));
  }

  function percent(value) {
    return typeof value === "number" ? Math.round(value * 100) + "%" : null;
  }

  function renderTrail(decisions, labels) {
    const items = decisions.map((d) => {
      const li = h("li", { class: d.final ? "trail__row trail__row--final" : "trail__row", "data-testid": "desk-trail-row" });
      const line = h("div", { class: "trail__line" });
      line.appendChild(h("strong", {}, str(d.tier, "tier")));
      line.appendChild(h("span", {}, " " + str(d.action, "")));
      if (d.pool) line.appendChild(h("span", {}, " → " + d.pool));
      const conf = percent(d.confidence);
      if (conf) line.appendChild(h("span", { class: "trail__confidence", "data-testid": "desk-trail-confidence" }, " · confidence " + conf));
      if (d.final) line.appendChild(h("span", { class: "flag" }, "final"));
      if (d.valid === false) line.appendChild(h("span", { class: "flag flag--bad" }, "invalid"));
      li.appendChild(line);
      if (str(d.reason)) li.appendChild(h("div", { class: "trail__reason" }, d.reason));
      if (str(d.error)) li.appendChild(h("div", { class: "trail__error" }, d.error));
      const meta = [str(d.model), typeof d.latency_ms === "number" ? Math.round(d.latency_ms) + " ms" : "", formatTime(d.created_at)]
        .filter(Boolean)
        .join(" · ");
      if (meta) li.appendChild(h("div", { class: "trail__meta" }, meta));
      return li;
    });
    labels.forEach((label) => {
      const li = h("li", { class: "trail__row trail__row--label", "data-testid": "desk-trail-row" });
      li.appendChild(h("strong", {}, "moved by " + str(label.author, "staff")));
      li.appendChild(h("span", {}, " " + str(label.previous_pool, "—") + " → " + str(label.pool, "—")));
      if (str(label.reason)) li.appendChild(h("div", { class: "trail__reason" }, label.reason));
      items.push(li);
    });
    if (!items.length) items.push(h("li", { class: "muted" }, "No routing decisions."));
    ui.trail.replaceChildren(...items);
  }

  function contextList(title, rows, render) {
    const section = h("div", { class: "context__group" });
    section.appendChild(h("h3", {}, title));
    if (!rows || !rows.length) {
      section.appendChild(h("p", { class: "muted" }, "None."));
      return section;
    }
    const ul = h("ul", {});
    rows.forEach((row) => ul.appendChild(render(row)));
    section.appendChild(ul);
    return section;
  }

  function ticketRef(row, extra) {
    if (row.hidden) {
      // Another team's ticket: its team, status and date only.
      const bits = [row.pool && row.pool.name, row.status && (STATUS_LABELS[row.status] || row.status)];
      return h("li", { class: "muted" }, "A ticket with " + (bits.filter(Boolean).join(" · ") || "another team"));
    }
    const li = h("li", {});
    const link = h("button", { type: "button", class: "linkish" }, "#" + row.id);
    link.addEventListener("click", () => openTicket(row.id));
    li.appendChild(link);
    const bits = [row.pool && row.pool.name, row.status && (STATUS_LABELS[row.status] || row.status), extra].filter(Boolean);
    if (bits.length) li.appendChild(h("span", {}, " " + bits.join(" · ")));
    if (str(row.preview)) li.appendChild(h("div", { class: "muted" }, row.preview));
    return li;
  }

  function renderContext(context) {
    if (!context) {
      ui.context.replaceChildren(h("p", { class: "muted" }, "No context gathered yet."));
      return;
    }
    const parts = [
      contextList("Earlier tickets of this customer", context.earlier_tickets, (row) => ticketRef(row, "")),
      contextList("Similar resolved tickets", context.similar_tickets, (row) =>
        ticketRef(row, typeof row.score === "number" ? "similarity " + row.score.toFixed(2) : "")
      ),
      contextList("Suggested canned replies", context.canned_replies, (row) => {
        const li = h("li", {});
        const pick = h("button", { type: "button", class: "linkish", "data-testid": "desk-context-canned" }, str(row.title, "reply"));
        pick.addEventListener("click", () => useCanned(String(row.id)));
        li.appendChild(pick);
        return li;
      }),
    ];
    if (Array.isArray(context.missing) && context.missing.length) {
      parts.push(h("p", { class: "muted" }, "Not available in time: " + context.missing.join(", ")));
    }
    ui.context.replaceChildren(...parts);
  }

  // --- reply, canned replies, attachments, drafts ------------------------------------------

  async function loadCanned() {
    const id = state.ticketId;
    let replies;
    try {
      replies = await api("GET", "tickets/" + id + "/canned-replies/");
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) showError(error);
      return;
    }
    if (id !== state.ticketId) return;
    state.canned = new Map(replies.map((r) => [String(r.id), r]));
    const options = [h("option", { value: "" }, "Canned reply…")].concat(
      replies.map((r) => h("option", { value: String(r.id) }, r.title + (r.pool ? "" : " (all pools)")))
    );
    ui.canned.replaceChildren(...options);
  }

  function insertIntoReply(text) {
    const current = ui.replyInput.value;
    ui.replyInput.value = current.trim() ? current.replace(/\s+$/, "") + "\n\n" + text : text;
    ui.replyInput.focus();
    ui.replyInput.setSelectionRange(ui.replyInput.value.length, ui.replyInput.value.length);
  }

  function useCanned(id) {
    const reply = state.canned.get(id);
    if (reply) insertIntoReply(reply.text);
    ui.canned.value = "";
  }

  async function sendReply() {
    const id = state.ticketId;
    const text = ui.replyInput.value;
    if (!text.trim() || id === null) {
      ui.replyInput.focus();
      return;
    }
    ui.replySend.disabled = true;
    const message = await attempt(() => api("POST", "tickets/" + id + "/reply/", { text }));
    ui.replySend.disabled = state.accessLost;
    if (!message) return;
    clearError();
    if (ui.replyInput.value === text) ui.replyInput.value = "";
    if (id === state.ticketId) appendMessage(message);
    later("detail", loadDetail, REFRESH_MS);
  }

  function onReplyTyping() {
    const now = Date.now();
    if (state.ticketId === null || state.accessLost || now - state.lastTypingSent < TYPING_SEND_MS) return;
    if (send({ type: "typing", ticket: state.ticketId })) state.lastTypingSent = now;
  }

  async function uploadAttachment() {
    const file = ui.attach.files && ui.attach.files[0];
    const id = state.ticketId;
    if (!file || id === null) return;
    const form = new FormData();
    form.append("file", file);
    ui.attach.disabled = true;
    const message = await attempt(() => api("POST", "tickets/" + id + "/attachments/", form));
    ui.attach.disabled = state.accessLost;
    ui.attach.value = "";
    if (message && id === state.ticketId) {
      clearError();
      appendMessage(message);
    }
  }

  function showDraftError(reason) {
    ui.draftError.textContent = "No draft available" + (reason ? ": " + reason : ".");
    ui.draftError.hidden = false;
  }

  function hideDraftError() {
    ui.draftError.textContent = "";
    ui.draftError.hidden = true;
  }

  // Asking answers at once with the draft `pending`; the model writes it in the background and
  // the socket brings it back (`draft` frame). Without a socket, the ticket detail is polled.
  const DRAFT_POLL_MS = 3000;
  const DRAFT_GIVE_UP_MS = 120000;

  async function requestDraft() {
    const id = state.ticketId;
    if (id === null) return;
    hideDraftError();
    ui.draft.disabled = true;
    ui.draft.textContent = "Drafting…";
    try {
      const draft = await api("POST", "tickets/" + id + "/draft/");
      if (id !== state.ticketId || !draft) return draftDone();
      if (draft.status === "pending") {
        state.pendingDraft = { id: draft.id, ticket: id, since: Date.now() };
        later("draft", pollDraft, DRAFT_POLL_MS);
        return;
      }
      showDraft(draft);
    } catch (error) {
      showDraftError(error.message);
      draftDone();
    }
  }

  function showDraft(draft) {
    if (draft.status === "ready" && str(draft.text)) {
      // The agent edits and sends it; a draft is never sent by itself.
      ui.replyInput.value = draft.text;
      ui.replyInput.focus();
    } else {
      showDraftError(str(draft.error, "the model gave no answer"));
    }
    draftDone();
  }

  function draftDone() {
    state.pendingDraft = null;
    ui.draft.disabled = state.accessLost;
    ui.draft.textContent = "AI draft";
  }

  function onDraftItem(ticketId, item) {
    const pending = state.pendingDraft;
    if (!pending || !item || item.id !== pending.id || item.status === "pending") return;
    if (ticketId === state.ticketId) showDraft(item);
    else draftDone();
  }

  // The socket may be down: look at the ticket's drafts until this one is written.
  async function pollDraft() {
    const pending = state.pendingDraft;
    if (!pending) return;
    if (Date.now() - pending.since > DRAFT_GIVE_UP_MS) {
      showDraftError("the draft took too long");
      return draftDone();
    }
    try {
      const detail = await api("GET", "tickets/" + pending.ticket + "/");
      const found = ((detail && detail.drafts) || []).find((d) => d.id === pending.id);
      if (found && found.status !== "pending") return onDraftItem(pending.ticket, found);
    } catch (error) {
      /* the next poll tries again */
    }
    later("draft", pollDraft, DRAFT_POLL_MS);
  }

  // --- actions ---------------------------------------------------------------------------

  async function ticketAction(action) {
    const id = state.ticketId;
    if (id === null) return;
    const summary = await attempt(() => api("POST", "tickets/" + id + "/" + action + "/"));
    if (!summary) return;
    clearError();
    if (id === state.ticketId && !state.accessLost) renderSummary(summary);
    later("list", loadList, REFRESH_MS);
    later("overview", loadOverview, REFRESH_MS);
    later("detail", loadDetail, REFRESH_MS);
  }

  function openReroute() {
    const current = state.detail && state.detail.pool ? state.detail.pool.slug : null;
    const pools = ((state.overview && state.overview.all_pools) || []).filter((p) => p.slug !== current);
    ui.reroutePool.replaceChildren(
      h("option", { value: "" }, "Choose a pool…"),
      ...pools.map((p) => h("option", { value: p.slug }, p.name))
    );
    ui.rerouteReason.value = "";
    ui.rerouteForm.hidden = false;
    ui.reroutePool.focus();
  }

  async function submitReroute() {
    const id = state.ticketId;
    const pool = ui.reroutePool.value;
    const reason = ui.rerouteReason.value.trim();
    if (!pool) {
      showError("Choose the pool the ticket belongs to.");
      ui.reroutePool.focus();
      return;
    }
    if (!reason) {
      showError("Give a reason: it teaches the router.");
      ui.rerouteReason.focus();
      return;
    }
    const summary = await attempt(() => api("POST", "tickets/" + id + "/reroute/", { pool, reason }));
    if (!summary) return;
    clearError();
    ui.rerouteForm.hidden = true;
    later("list", loadList, REFRESH_MS);
    later("overview", loadOverview, REFRESH_MS);
    // Moved out of our pools, the detail answers 404 and the view shows the loss of access.
    later("detail", loadDetail, REFRESH_MS);
  }

  async function changePresence() {
    const wanted = ui.presence.value;
    const answer = await attempt(() => api("POST", "desk/presence/", { presence: wanted }));
    if (answer) {
      clearError();
      setPresence(answer.presence);
    } else if (state.overview) {
      setPresence(state.overview.presence);
    }
  }

  // -------------------------------------------------------------------------------------
  // Socket
  // -------------------------------------------------------------------------------------
  function setConnection(text, stateName) {
    ui.conn.textContent = text;
    ui.conn.setAttribute("data-state", stateName);
  }

  function send(frame) {
    if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return false;
    state.ws.send(JSON.stringify(frame));
    return true;
  }

  function connect() {
    if (state.stopped) return;
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    let ws;
    try {
      ws = new WebSocket(scheme + location.host + config.socket);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    state.ws = ws;
    setConnection(state.everConnected ? "Reconnecting…" : "Connecting…", "connecting");
    ws.addEventListener("open", () => {
      const reconnected = state.everConnected;
      state.everConnected = true;
      state.retry = 0;
      setConnection("Live", "open");
      clearInterval(state.pingTimer);
      state.pingTimer = setInterval(() => send({ type: "ping" }), PING_MS);
      if (state.ticketId !== null && !state.accessLost) send({ type: "subscribe", ticket: state.ticketId });
      if (reconnected) {
        // Events sent while we were away are gone: read the current state again.
        loadOverview();
        loadList();
        loadDetail();
      }
    });
    ws.addEventListener("message", (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      if (frame && typeof frame.type === "string") onFrame(frame);
    });
    ws.addEventListener("close", (event) => {
      clearInterval(state.pingTimer);
      if (state.ws !== ws) return;
      state.ws = null;
      if (event.code === 4401) {
        state.stopped = true;
        setConnection("Signed out", "closed");
        showError("Your session has ended. Sign in again to keep working.");
        return;
      }
      if (event.code === 4403) {
        state.stopped = true;
        setConnection("Refused", "closed");
        showError("This address may not open the desk's live connection.");
        return;
      }
      scheduleReconnect();
    });
  }

  function scheduleReconnect() {
    const base = Math.min(RETRY_MAX_MS, 1000 * Math.pow(2, state.retry));
    const delay = base / 2 + Math.random() * (base / 2); // jitter: a restarted server is not stampeded
    state.retry += 1;
    setConnection("Reconnecting…", "reconnecting");
    clearTimeout(state.retryTimer);
    state.retryTimer = setTimeout(connect, delay);
  }

  function onFrame(frame) {
    const forThis = frame.ticket !== undefined && frame.ticket === state.ticketId;
    switch (frame.type) {
      case "welcome":
        setPresence(frame.presence);
        break;
      case "ticket":
        later("list", loadList, REFRESH_MS);
        later("overview", loadOverview, REFRESH_MS);
        if (forThis) later("detail", loadDetail, REFRESH_MS);
        break;
      case "presence":
        if (frame.user === config.user.id) setPresence(frame.presence);
        else later("overview", loadOverview, REFRESH_MS);
        break;
      case "unsubscribed":
        if (forThis && frame.reason === "access_lost") showAccessLost(frame.ticket);
        break;
      case "conversation":
        if (!forThis || state.accessLost || !frame.frame) break;
        if (frame.frame.type === "message") appendMessage(frame.frame);
        else if (frame.frame.type === "status") later("detail", loadDetail, REFRESH_MS);
        break;
      case "typing":
        if (forThis && !state.accessLost && frame.sender === "customer") showTyping();
        break;
      case "note":
        if (forThis && !state.accessLost) appendNote(frame.item);
        break;
      case "activity":
        if (forThis && !state.accessLost) appendActivity(frame.item);
        break;
      case "context":
        // Gathered in the background after routing (or a move): show it when it lands.
        if (forThis && !state.accessLost) later("detail", loadDetail, REFRESH_MS);
        break;
      case "error":
        // A refused subscribe: the detail's 404 turns into the access-lost view.
        if (frame.code === "not_found") later("detail", loadDetail, REFRESH_MS);
        // Typing frames over the limit are not worth an alarm; anything else is shown.
        else if (frame.code !== "rate_limited") showError(str(frame.message, "The desk refused a request."));
        break;
      case "draft":
        onDraftItem(frame.ticket, frame.item);
        break;
      default:
        break; // subscribed, pong and future frames need nothing here
    }
  }

  // -------------------------------------------------------------------------------------
  // Wiring
  // -------------------------------------------------------------------------------------
  function wire() {
    ui.error.querySelector(".error__close").addEventListener("click", clearError);
    ui.filter.value = state.filter;
    ui.filter.addEventListener("change", () => {
      state.filter = ui.filter.value;
      sessionStorage.setItem("desk:filter", state.filter);
      loadList();
    });
    ui.presence.addEventListener("change", changePresence);
    $("desk-back").addEventListener("click", () => ui.main.setAttribute("data-view", "list"));
    ui.actions.querySelectorAll("[data-action]").forEach((button) => {
      button.addEventListener("click", () => ticketAction(button.getAttribute("data-action")));
    });
    ui.rerouteBtn.addEventListener("click", openReroute);
    $("desk-reroute-cancel").addEventListener("click", () => (ui.rerouteForm.hidden = true));
    ui.rerouteForm.addEventListener("submit", (e) => {
      e.preventDefault();
      submitReroute();
    });
    ui.replyForm.addEventListener("submit", (e) => {
      e.preventDefault();
      sendReply();
    });
    ui.replyInput.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        sendReply();
      }
    });
    ui.replyInput.addEventListener("input", onReplyTyping);
    ui.canned.addEventListener("change", () => useCanned(ui.canned.value));
    ui.attach.addEventListener("change", uploadAttachment);
    ui.draft.addEventListener("click", requestDraft);
    ui.noteForm.addEventListener("submit", async (e) => {
      e.preventDefault();
      const id = state.ticketId;
      const text = ui.noteInput.value;
      if (!text.trim() || id === null) return;
      const note = await attempt(() => api("POST", "tickets/" + id + "/notes/", { text }));
      if (!note) return;
      clearError();
      if (ui.noteInput.value === text) ui.noteInput.value = "";
      if (id === state.ticketId) appendNote(note);
    });
    setInterval(tickAll, 1000);
  }

  wire();
  renderTabs();
  connect();
  loadOverview().then(loadList);
})();
