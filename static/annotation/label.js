// The labeling page: keyboard-first, one request per label (the answer carries the next item).
(function () {
  "use strict";
  const root = document.getElementById("labeler");
  const project = root.dataset.project;
  const csrf = root.dataset.csrf;
  const labels = JSON.parse(document.getElementById("label-names").textContent);
  const itemBox = document.getElementById("item");
  const statusBox = document.getElementById("status");
  const budgetBox = document.getElementById("budget");
  const api = "/api/projects/" + project + "/";
  const MESSAGES = {
    waiting: "The model is choosing the next items… this page checks again by itself.",
    budget_exhausted: "The budget is spent: thank you, there is nothing more to label.",
    pool_exhausted: "Every item is labeled or queued: nothing more to label.",
    quota_reached: "You have given all the labels your quota allows in this project.",
  };
  let current = null; // the item on screen that is leased to us
  let last = null; // {item, label}: the last item we labeled, for `u`
  let reviewing = false; // showing `last` to change its label
  let busy = false;
  let retry = null;

  async function call(path, body) {
    const response = await fetch(api + path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body || {}),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error(data.detail || "The server answered " + response.status);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  function showBudget(data) {
    if (data && data.budget !== undefined) {
      budgetBox.textContent = fmt(data.spent) + " / " + fmt(data.budget);
    }
  }
  function fmt(x) {
    return Number.isInteger(x) ? String(x) : x.toFixed(2);
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
      p.textContent = item.text; // never innerHTML: data is not markup
      itemBox.appendChild(p);
    } else {
      const pre = document.createElement("pre");
      pre.textContent = JSON.stringify(item.features);
      itemBox.appendChild(pre);
    }
    const meta = document.createElement("p");
    meta.className = "muted";
    meta.textContent = (note ? note + " · " : "") + "item " + (item.external_id || item.id);
    itemBox.appendChild(meta);
  }

  function highlight(label) {
    document.querySelectorAll("button.label").forEach((b) => {
      b.classList.toggle("chosen", b.dataset.label === label);
    });
  }

  function show(result) {
    showBudget(result);
    clearTimeout(retry);
    current = result.item;
    reviewing = false;
    highlight(null);
    if (current) {
      statusBox.textContent = "";
      render(current);
    } else {
      render(null);
      statusBox.textContent = MESSAGES[result.state] || result.state;
      if (result.state === "waiting") retry = setTimeout(loadNext, 1500);
    }
  }

  async function loadNext() {
    try {
      show(await call("next/"));
    } catch (e) {
      statusBox.textContent = e.message;
      retry = setTimeout(loadNext, 3000);
    }
  }

  async function choose(label) {
    if (busy) return;
    const target = reviewing ? last && last.item : current;
    if (!target) return;
    busy = true;
    try {
      if (reviewing) {
        const data = await call("annotations/", { item: target.id, label: label });
        showBudget(data);
        last.label = label;
        statusBox.textContent = "Changed to “" + label + "”.";
        backToCurrent();
      } else {
        const data = await call("annotations/", { item: target.id, label: label, next: true });
        last = { item: target, label: label };
        show(data.next);
      }
    } catch (e) {
      statusBox.textContent = e.message;
      if (e.status === 409) loadNext();
    } finally {
      busy = false;
    }
  }

  async function skip() {
    if (busy || reviewing || !current) return;
    busy = true;
    try {
      await call("skip/", { item: current.id });
      await loadNext();
    } catch (e) {
      statusBox.textContent = e.message;
    } finally {
      busy = false;
    }
  }

  function review() {
    if (!last || reviewing) return;
    reviewing = true;
    render(last.item, "Your last label: " + last.label + " — press a key to change it, Esc to go back");
    highlight(last.label);
  }

  function backToCurrent() {
    reviewing = false;
    highlight(null);
    if (current) render(current);
    else loadNext();
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.matches && event.target.matches("input, textarea")) return;
    // Keys 1..9 pick the first nine labels; 0 picks the tenth.
    const n = event.key === "0" ? 10 : Number(event.key);
    if (/^[0-9]$/.test(event.key) && n >= 1 && n <= Math.min(10, labels.length)) {
      event.preventDefault();
      choose(labels[n - 1]);
    } else if (event.key === "s") {
      skip();
    } else if (event.key === "u") {
      review();
    } else if (event.key === "Escape") {
      backToCurrent();
    }
  });
  document.querySelectorAll("button.label").forEach((b) => {
    b.addEventListener("click", () => choose(b.dataset.label));
  });
  document.getElementById("skip").addEventListener("click", skip);
  document.getElementById("undo").addEventListener("click", review);
  loadNext();
})();
