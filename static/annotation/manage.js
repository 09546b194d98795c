// Managers' pages: the new-project form, the settings page, the import, and the live
// dashboard. Plain JS; data from the API is shown with textContent only.
(function () {
  "use strict";

  // --- the API's errors, next to the field they name ------------------------------------
  // A service error is {detail, code, field}; DRF's are {field: [messages]} (or, for a
  // list, one such object per entry). A message naming no field of the form goes to the
  // form's non_field_errors slot.
  function clearErrors(form) {
    form.querySelectorAll("p.error").forEach((p) => (p.textContent = ""));
  }
  function flatten(value) {
    if (Array.isArray(value)) return value.map(flatten).filter(Boolean).join(" ");
    if (value && typeof value === "object") {
      return Object.keys(value)
        .map((k) => k + ": " + flatten(value[k]))
        .join("; ");
    }
    return value === undefined || value === null ? "" : String(value);
  }
  function showErrors(form, data, status, listField) {
    const slot = (field) => form.querySelector('p.error[data-for="' + CSS.escape(field) + '"]');
    const general = slot("non_field_errors");
    if (Array.isArray(data) && listField && slot(listField)) {
      // One error object per entry of a list that was sent (the budget groups).
      slot(listField).textContent = data
        .map((entry, i) => (entry && Object.keys(entry).length ? "Row " + (i + 1) + ": " + flatten(entry) : ""))
        .filter(Boolean)
        .join(" ");
      return;
    }
    const messages = data && typeof data === "object" && !Array.isArray(data) ? data : {};
    if (typeof messages.detail === "string" && "code" in messages) {
      const target = (messages.field && slot(messages.field)) || general;
      if (target) target.textContent = messages.detail;
      return;
    }
    let shown = false;
    Object.keys(messages).forEach((field) => {
      const target = slot(field);
      if (target) {
        target.textContent = [].concat(messages[field]).join(" ");
        shown = true;
      }
    });
    if (!shown && general) {
      general.textContent = messages.detail || flatten(messages) || "The server answered " + status + ".";
    }
  }
  async function send(form, method, body) {
    const response = await fetch(form.dataset.url, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": form.dataset.csrf },
      body: JSON.stringify(body),
    });
    return { response: response, data: await response.json().catch(() => ({})) };
  }

  // --- new project: posts to the API, shows its validation messages by field -----------
  const form = document.getElementById("project-form");
  if (form) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
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
      showErrors(form, data, response.status);
    });
  }

  // --- settings page: each section saves on its own, through the API's own calls --------
  // section(form, method, body, done): on submit, sends body() and shows "Saved" (or
  // done(data)) or the API's errors next to their fields.
  function section(form, method, body, done) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const result = form.querySelector("[data-result]");
      const button = form.querySelector("button[type=submit]");
      clearErrors(form);
      result.className = "status";
      result.textContent = "Saving…";
      button.disabled = true;
      try {
        const { response, data } = await send(form, method, body());
        if (response.ok) {
          result.textContent = (done && done(data)) || "Saved";
        } else {
          result.className = "status error";
          result.textContent = "Not saved: see the message above.";
          showErrors(form, data, response.status, form.dataset.listField);
        }
      } catch (e) {
        result.className = "status error";
        result.textContent = "Not saved: the server cannot be reached.";
      } finally {
        button.disabled = false;
      }
    });
  }

  const settingsForm = document.getElementById("settings-form");
  if (settingsForm) {
    const field = (name) => settingsForm.elements[name].value;
    section(settingsForm, "PATCH", () => ({
      name: field("name").trim(),
      budget: field("budget"),
      cost_rule: field("cost_rule"),
      cost_value: field("cost_value"),
      cost_floor: field("cost_floor"),
      acquisition: field("acquisition"),
      batch_size: field("batch_size"),
      ensemble_size: field("ensemble_size"),
      audit_share: field("audit_share"),
      show_predictions: settingsForm.elements.show_predictions.checked,
      out_of_scope_label: field("out_of_scope_label"),
      group_mode: field("group_mode"),
      group_floor: field("group_floor"),
    }));
  }

  const groupsForm = document.getElementById("groups-form");
  if (groupsForm) {
    groupsForm.dataset.listField = "groups";
    const rows = groupsForm.querySelector("#groups tbody");
    document.getElementById("add-group").addEventListener("click", () => {
      const row = document.getElementById("group-row").content.firstElementChild.cloneNode(true);
      rows.appendChild(row);
      row.querySelector("input").focus();
    });
    rows.addEventListener("click", (event) => {
      if (event.target.classList.contains("remove-group")) event.target.closest("tr").remove();
    });
    const orNull = (input) => (input.value.trim() === "" ? null : input.value.trim());
    section(groupsForm, "PUT", () =>
      Array.from(rows.querySelectorAll("tr")).map((tr) => ({
        name: tr.querySelector("[name=group-name]").value.trim(),
        share: orNull(tr.querySelector("[name=group-share]")),
        budget: orNull(tr.querySelector("[name=group-budget]")),
      }))
    );
  }

  const memberForm = document.getElementById("member-form");
  if (memberForm) {
    const field = (name) => memberForm.elements[name].value.trim();
    const list = document.querySelector("#member-list tbody");
    section(
      memberForm,
      "POST",
      () => ({
        username: field("username"),
        role: field("role"),
        quota_total: field("quota_total") === "" ? null : field("quota_total"),
        quota_daily: field("quota_daily") === "" ? null : field("quota_daily"),
      }),
      (m) => {
        let row = Array.from(list.querySelectorAll("tr")).find((tr) => tr.dataset.username === m.username);
        if (!row) {
          row = document.createElement("tr");
          row.dataset.username = m.username;
          list.appendChild(row);
        }
        const cells = [m.username, m.role, m.quota_total ?? "—", m.quota_daily ?? "—"].map((v) => {
          const td = document.createElement("td");
          td.textContent = String(v);
          return td;
        });
        row.replaceChildren(...cells);
        return "Saved: " + m.username + " is " + m.role + ".";
      }
    );
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
