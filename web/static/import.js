// CSV import page: sends the chosen file as the request body of the JSON API, so
// that the server reads it as a stream, and shows the report that comes back.
"use strict";

(function () {
  const form = document.getElementById("import-form");
  if (!form) {
    return;
  }
  const fileInput = document.getElementById("file");
  const segmentSelect = document.getElementById("segment_id");
  const button = document.getElementById("import-button");
  const status = document.getElementById("import-status");
  const report = document.getElementById("import-report");
  const errors = document.getElementById("import-errors");
  const truncated = document.getElementById("import-errors-truncated");
  // web refuses a POST made with the session cookie unless this CSRF token comes with it.
  const xsrfToken = document.querySelector('meta[name="xsrf-token"]').content;

  function showStatus(message, kind) {
    status.textContent = message;
    status.className = "import-status " + kind;
    status.hidden = false;
  }

  function formatSize(bytes) {
    if (bytes < 1024) {
      return bytes + " bytes";
    }
    if (bytes < 1024 * 1024) {
      return (bytes / 1024).toFixed(1) + " KiB";
    }
    return (bytes / (1024 * 1024)).toFixed(1) + " MiB";
  }

  function showReport(data) {
    for (const name of ["created", "updated", "skipped"]) {
      report.querySelector('[data-report="' + name + '"]').textContent = String(data[name]);
    }
    const body = errors.querySelector("tbody");
    body.replaceChildren();
    for (const error of data.errors) {
      const row = document.createElement("tr");
      const line = document.createElement("td");
      line.className = "number";
      line.textContent = String(error.line);
      const reason = document.createElement("td");
      reason.textContent = error.reason;
      row.append(line, reason);
      body.append(row);
    }
    errors.hidden = data.errors.length === 0;
    truncated.hidden = !data.errors_truncated;
    report.hidden = false;
  }

  async function readError(response) {
    try {
      const data = await response.json();
      if (data && data.error) {
        return data.error;
      }
    } catch (ignored) {
      // Not JSON, such as a proxy's error page, so the status code is shown instead.
    }
    return "the server answered " + response.status + " " + response.statusText;
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const file = fileInput.files[0];
    if (!file) {
      showStatus("Choose a CSV file first.", "error");
      return;
    }
    let url = "/api/v1/contacts/import";
    if (segmentSelect.value) {
      url += "?segment_id=" + encodeURIComponent(segmentSelect.value);
    }

    button.disabled = true;
    form.setAttribute("aria-busy", "true");
    report.hidden = true;
    showStatus("Importing " + file.name + " (" + formatSize(file.size) + ")…", "busy");
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "text/csv", "X-XSRFToken": xsrfToken },
        body: file,
      });
      if (response.status === 401) {
        showStatus("The import failed: your session has ended. Reload the page to sign in again.", "error");
        return;
      }
      if (!response.ok) {
        showStatus("The import failed: " + (await readError(response)), "error");
        return;
      }
      showReport(await response.json());
      showStatus("Import of " + file.name + " finished.", "done");
    } catch (error) {
      showStatus("The import failed: the web service could not be reached (" + error.message + ").", "error");
    } finally {
      button.disabled = false;
      form.removeAttribute("aria-busy");
    }
  });
})();
