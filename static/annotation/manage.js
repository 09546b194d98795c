// Managers' pages: the new-project form, the import, and the live dashboard. Plain JS;
// data from the API is shown with textContent only.
(function () {
  "use strict";

  // --- new project: posts to the API, shows its validation messages by field -----------
  const form = document.getElementById("project-form");
  if (form) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      form.querySelectorAll("p.error").forEach((p) => (p.textContent = ""));
      const value = (name) => form.elements[name].value;
      const body = {
        name: value("name").trim(),
        labels: value("labels")
          .split("\n")
          .map((s) => s.trim())
          .filter(Boolean),
        budget: value("budget"),
        acquisition: value("acquisition"),
        batch_size: Number(value("batch_size")),
        ensemble_size: Number(value("ensemble_size")),
        show_predictions: form.elements.show_predictions.checked,
      };
      const response = await fetch("/api/projects/", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": form.dataset.csrf },
        body: JSON.stringify(body),
      });
      const data = await response.json().catch(() => ({}));
      if (response.status === 201) {
        window.location.assign("/projects/" + data.id + "/");
        return;
      }
      const messages = typeof data === "object" && data ? data : {};
      let shown = false;
      Object.keys(messages).forEach((field) => {
        const slot = form.querySelector('p.error[data-for="' + CSS.escape(field) + '"]');
        if (slot) {
          slot.textContent = [].concat(messages[field]).join(" ");
          shown = true;
        }
      });
      if (!shown) {
        form.querySelector('p.error[data-for="non_field_errors"]').textContent =
          messages.detail || "The server answered " + response.status + ".";
      }
    });
  }

  // --- import: upload progress, then the count or the row-level error ----------------
  const importBox = document.getElementById("import");
  if (importBox) {
    const progress = document.getElementById("import-progress");
    const result = document.getElementById("import-result");
    document.getElementById("import-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const file = document.getElementById("import-file").files[0];
      if (!file) return;
      const data = new FormData();
      data.append("file", file);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", importBox.dataset.url);
      xhr.setRequestHeader("X-CSRFToken", importBox.dataset.csrf);
      progress.hidden = false;
      progress.value = 0;
      result.className = "";
      result.textContent = "Sending " + file.name + "…";
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable) progress.value = Math.round((100 * e.loaded) / e.total);
      };
      xhr.onload = () => {
        progress.value = 100;
        let body = {};
        try {
          body = JSON.parse(xhr.responseText);
        } catch (e) {
          /* not JSON */
        }
        if (xhr.status === 201) {
          result.textContent = "Imported " + body.created + " items from " + file.name + ". Featurizing follows; the counts below update by themselves.";
          refresh();
        } else {
          result.className = "error";
          const where = [body.row ? "row " + body.row : "", body.field ? "field " + body.field : ""].filter(Boolean).join(", ");
          result.textContent =
            "Nothing was imported" + (where ? " (" + where + ")" : "") + ": " + (body.detail || JSON.stringify(body) || "error " + xhr.status);
        }
      };
      xhr.onerror = () => {
        result.className = "error";
        result.textContent = "The upload failed: the server cannot be reached. Nothing was imported.";
      };
      xhr.send(data);
    });
  }

  // --- controls (managers): start a round now, pause and resume the project -----------
  const controls = document.getElementById("controls");
  const pauseButton = document.getElementById("pause");
  let controlBusy = false;
  let controlDone = 0; // changes made here: a dashboard fetched before one is out of date
  function showPaused(paused) {
    pauseButton.dataset.paused = String(paused);
    pauseButton.textContent = paused ? "Resume" : "Pause";
  }
  function why(data, status) {
    if (data && data.detail) return String(data.detail);
    if (data && typeof data === "object" && Object.keys(data).length) {
      return Object.keys(data)
        .map((k) => k + ": " + [].concat(data[k]).join(" "))
        .join("; ");
    }
    return "the server answered " + status + ".";
  }
  async function control(button, method, path, body, done) {
    const result = document.getElementById("control-result");
    if (controlBusy) return;
    controlBusy = true;
    button.disabled = true;
    result.className = "";
    result.textContent = "Sending…";
    try {
      const response = await fetch(controls.dataset.projectUrl + path, {
        method: method,
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": controls.dataset.csrf },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const data = await response.json().catch(() => ({}));
      if (response.ok) {
        controlDone += 1;
        result.textContent = done(data);
        refresh();
      } else {
        result.className = "error";
        result.textContent = "Not done: " + why(data, response.status);
      }
    } catch (e) {
      result.className = "error";
      result.textContent = "Not done: the server cannot be reached.";
    } finally {
      controlBusy = false;
      button.disabled = false;
    }
  }
  if (controls) {
    const startButton = document.getElementById("start-round");
    startButton.addEventListener("click", () =>
      control(startButton, "POST", "rounds/", undefined, (r) =>
        "Round " + r.number + " (" + r.strategy + ") started: it trains and queues the next batch; the rounds below update by themselves."
      )
    );
    pauseButton.addEventListener("click", () =>
      control(pauseButton, "PATCH", "", { paused: pauseButton.dataset.paused !== "true" }, (p) => {
        showPaused(p.paused);
        return p.paused
          ? "Paused: annotators get no new items and no round starts by itself."
          : "Resumed: annotators get items again.";
      })
    );
  }

  // --- the live dashboard: the server renders its part, the page swaps it in -----------
  const live = document.getElementById("live");
  async function refresh() {
    const since = controlDone;
    try {
      const response = await fetch(live.dataset.url, { credentials: "same-origin" });
      if (!response.ok) return;
      // Server-rendered, template-escaped markup: parsed as a document, never as script.
      const doc = new DOMParser().parseFromString(await response.text(), "text/html");
      live.replaceChildren(...Array.from(doc.body.childNodes).map((n) => document.importNode(n, true)));
      // Another manager may have paused or resumed: the button follows the server.
      const state = document.getElementById("paused-state");
      if (pauseButton && state && !controlBusy && since === controlDone) showPaused(state.dataset.paused === "true");
    } catch (e) {
      /* offline: try again at the next tick */
    }
  }
  if (live) {
    setInterval(() => {
      if (document.visibilityState === "visible") refresh();
    }, Number(live.dataset.interval || 3000));
  }
})();
