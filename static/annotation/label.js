// The labeling page. Nobody waits: the next item is fetched ahead (and kept leased), so a
// keypress shows it from memory; labels and skips go out in the background through an
// outbox that retries with back-off and is kept (in localStorage too) until the server
// accepts or refuses each with a reason. Item data is rendered with textContent only.
(function () {
  "use strict";
  const root = document.getElementById("labeler");
  const project = root.dataset.project;
  const csrf = root.dataset.csrf;
  const leaseSeconds = Number(root.dataset.leaseSeconds) || 600;
  // key -> label, as the server binds them (the project's key map, else 1-9 and 0); in
  // either case (the server refuses a map that would tell "c" from "C").
  const keyLabels = {};
  Object.entries(JSON.parse(document.getElementById("label-keys").textContent)).forEach(([key, label]) => {
    keyLabels[key.toLowerCase()] = label;
  });
  const $ = (id) => document.getElementById(id);
  const itemBox = $("item");
  const statusBox = $("status");
  const syncBox = $("sync");
  const budgetBox = $("budget");
  const sessionBox = $("session");
  const api = "/api/projects/" + project + "/";
  const OUTBOX_KEY = "label-outbox:" + project + ":" + root.dataset.user;
  const TABS_KEY = "label-tabs:" + project + ":" + root.dataset.user;
  const TAB = Math.random().toString(36).slice(2);
  const RENEW_MS = Math.max(5000, Math.min(60000, (leaseSeconds * 1000) / 3));
  const MESSAGES = {
    waiting: "The model is choosing the next items… this page checks again by itself.",
    budget_exhausted: "The budget is spent: thank you. This page checks again by itself in case it is raised.",
    pool_exhausted: "Every item is labeled or queued: nothing more to label for now. This page checks again by itself.",
    quota_reached: "You have given all the labels your quota allows in this project.",
    paused: "This project is paused by a manager. Your labels so far are kept; this page carries on by itself when it is resumed.",
  };
  // How soon to ask again when there is nothing to show, by NextState (ms).
  const RETRY = { waiting: 1500, paused: 2000 };

  let current = null; // the item on screen, leased to us
  let ahead = null; // the next item, fetched ahead and leased to us
  let aheadState = null; // why there is no item ahead (a NextState)
  let fetching = null; // the `next` request in flight (one at a time)
  let last = null; // {item, label}: the last item we labeled, for `u`
  let reviewing = false;
  let poll = null;
  let sessionCount = 0;
  let figures = { spent: -1, budget: null }; // budget figures on screen
  let outbox = loadOutbox();
  let sending = false;
  let backoff = 0;
  let sendTimer = null;
  let sendError = "";
  const refused = [];

  // --- server ------------------------------------------------------------------------
  async function call(path, body) {
    let response;
    try {
      response = await fetch(api + path, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify(body || {}),
      });
    } catch (e) {
      const error = new Error("The server cannot be reached.");
      error.status = 0;
      throw error;
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error(reason(data) || "The server answered " + response.status + ".");
      error.status = response.status;
      throw error;
    }
    // Answers may arrive out of order: spent only grows unless the budget changed.
    if (data.budget !== undefined && (data.budget !== figures.budget || data.spent >= figures.spent)) {
      figures = { spent: data.spent, budget: data.budget };
      budgetBox.textContent = fmt(data.spent) + " / " + fmt(data.budget);
    }
    return data;
  }
  function reason(data) {
    if (!data || typeof data !== "object") return "";
    if (data.detail) return String(data.detail);
    return Object.keys(data)
      .map((k) => k + ": " + [].concat(data[k]).join(" "))
      .join("; ");
  }
  function fmt(x) {
    return Number.isInteger(x) ? String(x) : Number(x).toFixed(2);
  }

  // --- the outbox: labels and skips sent in order, retried, never dropped silently -------
  function loadOutbox() {
    try {
      return JSON.parse(localStorage.getItem(OUTBOX_KEY)) || [];
    } catch (e) {
      return [];
    }
  }
  function saveOutbox() {
    try {
      localStorage.setItem(OUTBOX_KEY, JSON.stringify(outbox));
    } catch (e) {
      /* private mode: the outbox lives in memory only */
    }
  }
  function enqueue(entry) {
    outbox.push(entry);
    saveOutbox();
    showSync();
    send();
  }
  function showSync() {
    syncBox.dataset.pending = String(outbox.length);
    const parts = [];
    if (outbox.length && sendError) {
      parts.push(
        outbox.length + " not sent yet (" + sendError + "); retrying in " + Math.round(backoff / 1000) + " s, kept until the server answers."
      );
    }
    refused.slice(-3).forEach((r) => parts.push(r));
    syncBox.textContent = parts.join(" ");
    syncBox.classList.toggle("error", parts.length > 0);
  }
  async function send() {
    if (sending || !outbox.length) return;
    sending = true;
    clearTimeout(sendTimer);
    const entry = outbox[0];
    try {
      if (entry.kind === "skip") {
        await call("skip/", { item: entry.item });
      } else {
        await call("annotations/", { item: entry.item, label: entry.label });
        if (!entry.relabel) {
          sessionCount += 1;
          sessionBox.textContent = sessionCount + " labeled this session";
        }
      }
      outbox.shift();
      backoff = 0;
      sendError = "";
    } catch (e) {
      if (e.status >= 400 && e.status < 500 && e.status !== 408 && e.status !== 429) {
        // Refused with a reason: say so, and go on with the rest.
        outbox.shift();
        refused.push("Item " + entry.item + (entry.kind === "skip" ? " (skip)" : " (“" + entry.label + "”)") + " was refused: " + e.message);
        sendError = "";
      } else {
        sendError = e.message;
        backoff = Math.min(15000, backoff ? backoff * 2 : 1000);
      }
    } finally {
      sending = false;
      saveOutbox();
      showSync();
    }
    if (outbox.length) {
      sendTimer = setTimeout(send, backoff);
    } else if (!current && !reviewing) {
      refill(); // what we sent may change why there is nothing to show
    }
  }

  // --- items on hand: current, ahead, and those in the outbox stay leased to us ---------
  function onHand() {
    const ids = outbox.map((e) => e.item);
    if (current) ids.push(current.id);
    if (ahead) ids.push(ahead.id);
    return ids;
  }
  function otherTabs() {
    try {
      const tabs = JSON.parse(localStorage.getItem(TABS_KEY)) || {};
      const fresh = Date.now() - 2 * RENEW_MS;
      return Object.keys(tabs)
        .filter((t) => t !== TAB && tabs[t].t > fresh)
        .flatMap((t) => tabs[t].ids);
    } catch (e) {
      return [];
    }
  }
  function announceTab(gone) {
    // Two tabs of one annotator never show the same item: each says what it holds.
    try {
      const tabs = JSON.parse(localStorage.getItem(TABS_KEY)) || {};
      if (gone) delete tabs[TAB];
      else tabs[TAB] = { ids: [current, ahead].filter(Boolean).map((i) => i.id), t: Date.now() };
      localStorage.setItem(TABS_KEY, JSON.stringify(tabs));
    } catch (e) {
      /* no storage: tabs are not coordinated */
    }
  }

  function fetchNext() {
    if (!fetching) {
      const exclude = onHand().concat(otherTabs()).slice(-20);
      fetching = call("next/", exclude.length ? { exclude: exclude } : {}).finally(() => {
        fetching = null;
      });
    }
    return fetching;
  }

  // Fill the screen, then the slot ahead.
  async function refill() {
    clearTimeout(poll);
    try {
      if (!current && !reviewing) {
        if (ahead) {
          current = ahead;
          ahead = null;
        } else {
          const data = await fetchNext();
          if (current || reviewing) return refill();
          current = data.item;
          aheadState = data.state;
        }
        showCurrent();
        if (!current) {
          poll = setTimeout(refill, RETRY[aheadState] || 5000);
          return;
        }
      }
      if (current && !ahead) {
        const data = await fetchNext();
        if (data.item && onHand().indexOf(data.item.id) >= 0) {
          return refill(); // the answer to an earlier request: ask again, excluding it
        }
        if (data.item) {
          if (!current && !reviewing) {
            current = data.item;
            showCurrent();
          } else ahead = data.item;
        }
        aheadState = data.state;
        if (!data.item) poll = setTimeout(refill, 3000);
      }
      announceTab();
    } catch (e) {
      statusBox.textContent = e.message + " Trying again…";
      poll = setTimeout(refill, 3000);
    }
  }

  // --- screen ------------------------------------------------------------------------
  // meta.highlight: [[start, end], ...] character offsets, or strings marked wherever they
  // occur. Spans that overlap, fall outside the text or are malformed are left out.
  function highlightSpans(text, highlight) {
    if (!Array.isArray(highlight)) return [];
    const spans = [];
    for (const h of highlight.slice(0, 200)) {
      if (typeof h === "string" && h.length > 0) {
        for (let at = text.indexOf(h); at >= 0; at = text.indexOf(h, at + h.length)) {
          spans.push([at, at + h.length]);
        }
      } else if (Array.isArray(h) && Number.isInteger(h[0]) && Number.isInteger(h[1])) {
        if (h[0] >= 0 && h[1] > h[0] && h[1] <= text.length) spans.push([h[0], h[1]]);
      }
    }
    spans.sort((a, b) => a[0] - b[0]);
    const kept = [];
    for (const span of spans) {
      if (!kept.length || span[0] >= kept[kept.length - 1][1]) kept.push(span);
    }
    return kept;
  }

  function appendHighlighted(parent, text, highlight) {
    let at = 0;
    for (const [start, end] of highlightSpans(text, highlight)) {
      parent.appendChild(document.createTextNode(text.slice(at, start)));
      const mark = document.createElement("mark");
      mark.textContent = text.slice(start, end);
      parent.appendChild(mark);
      at = end;
    }
    parent.appendChild(document.createTextNode(text.slice(at)));
  }

  function render(item, note) {
    itemBox.replaceChildren();
    if (!item) return;
    if (item.image !== undefined) {
      const img = document.createElement("img");
      if (/^data:image\//.test(item.image)) img.src = item.image;
      img.alt = "item " + (item.external_id || item.id);
      itemBox.appendChild(img);
    } else if (item.text !== undefined) {
      const p = document.createElement("p");
      p.className = "text";
      appendHighlighted(p, item.text, (item.meta || {}).highlight); // text nodes, never markup
      itemBox.appendChild(p);
    } else {
      const pre = document.createElement("pre");
      pre.textContent = JSON.stringify(item.features);
      itemBox.appendChild(pre);
    }
    const meta = document.createElement("p");
    meta.className = "muted meta";
    let why = "";
    if (item.queued_by) {  // managers: what queued this item
      const q = item.queued_by;
      why = " · round " + q.round + ", " + q.strategy +
        (q.score === null || q.score === undefined ? "" : ", score " + Number(q.score).toFixed(3));
    }
    meta.textContent = (note ? note + " · " : "") + "item " + (item.external_id || item.id) + why;
    itemBox.appendChild(meta);
  }

  function showSuggestion(item) {
    const box = $("suggestion");
    const top = (item && item.suggestion) || [];
    document.querySelectorAll("button.label .prob").forEach((s) => (s.textContent = ""));
    box.hidden = top.length === 0;
    const shown = $("suggested");
    shown.replaceChildren();
    top.slice(0, 3).forEach((s, i) => {
      const span = document.createElement("span");
      span.className = i === 0 ? "top" : "";
      span.textContent = s.label + " " + Math.round(s.probability * 100) + "%";
      shown.appendChild(span);
      const button = labelButton(s.label);
      if (button) button.querySelector(".prob").textContent = " " + Math.round(s.probability * 100) + "%";
    });
  }

  function labelButton(name) {
    return Array.from(document.querySelectorAll("button.label")).find((b) => b.dataset.label === name);
  }

  function highlight(label) {
    document.querySelectorAll("button.label").forEach((b) => {
      b.classList.toggle("chosen", b.dataset.label === label);
    });
  }

  function showCurrent() {
    reviewing = false;
    $("back").hidden = true;
    highlight(null);
    if (current) {
      statusBox.textContent = "";
      render(current);
      showSuggestion(current);
    } else {
      render(null);
      showSuggestion(null);
      statusBox.textContent = MESSAGES[aheadState] || aheadState || "";
    }
  }

  // --- actions -----------------------------------------------------------------------
  function choose(label) {
    if (reviewing) {
      if (!last) return;
      enqueue({ kind: "label", item: last.item.id, label: label, relabel: true });
      last.label = label;
      statusBox.textContent = "Changed to “" + label + "”.";
      backToCurrent(true);
      return;
    }
    if (!current) return;
    enqueue({ kind: "label", item: current.id, label: label });
    last = { item: current, label: label };
    advance();
  }

  function skip() {
    if (reviewing || !current) return;
    enqueue({ kind: "skip", item: current.id });
    advance();
  }

  function advance() {
    current = ahead;
    ahead = null;
    if (current) showCurrent();
    else {
      render(null);
      showSuggestion(null);
      statusBox.textContent = "Loading…";
    }
    refill();
  }

  function acceptSuggestion() {
    const target = reviewing ? last && last.item : current;
    const top = target && target.suggestion && target.suggestion[0];
    if (top) choose(top.label);
  }

  function review() {
    if (!last || reviewing) return;
    reviewing = true;
    $("back").hidden = false;
    render(last.item, "Your last label: " + last.label + " — press a key to change it, Esc to go back");
    showSuggestion(last.item);
    highlight(last.label);
  }

  function backToCurrent(keepStatus) {
    if (!reviewing) return;
    const note = statusBox.textContent;
    showCurrent();
    if (keepStatus && current) statusBox.textContent = note;
    if (!current) refill();
  }

  // --- leases: renewed while visible, released when the page goes away ----------------
  async function renew() {
    if (document.visibilityState !== "visible") return;
    announceTab();
    for (const which of ["current", "ahead"]) {
      const item = which === "current" ? current : ahead;
      if (!item) continue;
      try {
        await call("lease/", { item: item.id, action: "renew" });
      } catch (e) {
        if (e.status === 409 && which === "ahead" && ahead === item) {
          ahead = null; // lost (expired): fetch another
          refill();
        }
      }
    }
  }
  function release() {
    announceTab(true);
    [current, ahead].filter(Boolean).forEach((item) => {
      if (outbox.some((e) => e.item === item.id)) return;
      const form = new URLSearchParams({ item: item.id, action: "release", csrfmiddlewaretoken: csrf });
      navigator.sendBeacon(api + "lease/", form);
    });
  }
  setInterval(renew, RENEW_MS);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") renew();
  });
  window.addEventListener("pagehide", release);
  window.addEventListener("beforeunload", (event) => {
    if (outbox.length) event.preventDefault(); // labels not yet sent: ask before leaving
  });
  window.addEventListener("online", send);

  // --- label filter (more than ten labels) ----------------------------------------------
  const filter = $("filter");
  let active = 0;
  function visibleButtons() {
    return Array.from(document.querySelectorAll("button.label")).filter((b) => !b.hidden);
  }
  function applyFilter() {
    const q = filter.value.trim().toLowerCase();
    document.querySelectorAll("button.label").forEach((b) => {
      b.hidden = q !== "" && !b.dataset.label.toLowerCase().includes(q);
    });
    active = 0;
    markActive();
  }
  function markActive() {
    const shown = visibleButtons();
    document.querySelectorAll("button.label").forEach((b) => b.classList.remove("active"));
    if (filter.value && shown[active]) shown[active].classList.add("active");
  }
  if (filter) {
    filter.addEventListener("input", applyFilter);
    filter.addEventListener("keydown", (event) => {
      const shown = visibleButtons();
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        const step = event.key === "ArrowDown" ? 1 : -1;
        active = (active + step + shown.length) % Math.max(1, shown.length);
        markActive();
      } else if (event.key === "Enter") {
        event.preventDefault();
        if (shown[active]) choose(shown[active].dataset.label);
        filter.value = "";
        applyFilter();
      } else if (event.key === "Escape") {
        filter.value = "";
        applyFilter();
        filter.blur();
      }
    });
  }

  // --- keys: every one has a visible button twin --------------------------------------
  const keymap = $("keymap");
  const zoomButton = $("zoom"); // image projects only
  function toggleZoom() {
    const zoomed = itemBox.classList.toggle("zoomed"); // kept for the next images too
    zoomButton.setAttribute("aria-pressed", String(zoomed));
  }
  if (zoomButton) zoomButton.addEventListener("click", toggleZoom);
  function toggleKeymap() {
    if (keymap.open) keymap.close();
    else keymap.showModal();
  }
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.matches && event.target.matches("input, textarea")) return;
    if (keymap.open) {
      if (event.key === "?") toggleKeymap();
      return;
    }
    const key = event.key.length === 1 ? event.key.toLowerCase() : "";
    if (key && Object.prototype.hasOwnProperty.call(keyLabels, key)) {
      event.preventDefault();
      choose(keyLabels[key]);
    } else if (event.key === "s") {
      skip();
    } else if (event.key === "u") {
      review();
    } else if (event.key === "Escape") {
      backToCurrent();
    } else if (event.key === "Enter") {
      event.preventDefault();
      acceptSuggestion();
    } else if (event.key === "?") {
      toggleKeymap();
    } else if (key === "z" && zoomButton) {
      toggleZoom();
    } else if (event.key === "/" && filter) {
      event.preventDefault();
      filter.focus();
    }
  });
  document.querySelectorAll("button.label").forEach((b) => {
    b.addEventListener("click", () => choose(b.dataset.label));
  });
  $("skip").addEventListener("click", skip);
  $("undo").addEventListener("click", review);
  $("back").addEventListener("click", () => backToCurrent());
  $("accept").addEventListener("click", acceptSuggestion);
  $("keys").addEventListener("click", toggleKeymap);

  showSync();
  send(); // what an earlier visit could not send
  refill();
})();
