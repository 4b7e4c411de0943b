// Campaign page: while the campaign is sending, reads its counts and the shown page
// of jobs from the JSON API every 2 seconds and updates the page in place.
"use strict";

(function () {
  const POLL_INTERVAL_MS = 2000;
  const root = document.getElementById("campaign");
  // A paused campaign is watched too: email_client may pause it, and a user may resume it elsewhere.
  const WATCHED = ["sending", "paused"];
  if (!root || !WATCHED.includes(root.dataset.status)) {
    return;
  }
  // Samples of (time, jobs done) over the last RATE_WINDOW_MS give the current rate.
  const RATE_WINDOW_MS = 10000;
  const samples = [];
  const campaignId = root.dataset.campaignId;
  // Only GET requests are sent here; web would need this CSRF token for any request that changes something.
  const xsrfToken = document.querySelector('meta[name="xsrf-token"]').content;

  function statusBadge(status) {
    const badge = document.createElement("span");
    badge.className = "status status-" + status;
    badge.textContent = status;
    return badge;
  }

  function showRate(done) {
    const now = Date.now();
    samples.push({ time: now, done: done });
    while (samples.length > 2 && now - samples[0].time > RATE_WINDOW_MS) {
      samples.shift();
    }
    const first = samples[0];
    const seconds = (now - first.time) / 1000;
    if (seconds <= 0) {
      return;
    }
    document.getElementById("campaign-rate").textContent = ((done - first.done) / seconds).toFixed(1);
    document.getElementById("campaign-rate-text").hidden = false;
  }

  function showNotices(campaign) {
    document.getElementById("campaign-paused").hidden = campaign.status !== "paused";
    document.getElementById("campaign-pause-reason").textContent = campaign.pause_reason || "";
    const waiting = campaign.status === "sending" && Boolean(campaign.dispatch_error);
    document.getElementById("campaign-waiting").hidden = !waiting;
    document.getElementById("campaign-dispatch-error").textContent = campaign.dispatch_error || "";
  }

  // Finished or cancelled: the pause, resume and cancel buttons no longer apply.
  function showEnded() {
    for (const id of ["pause-button", "resume-button", "cancel-button"]) {
      const button = document.getElementById(id);
      if (button) {
        button.closest("form").hidden = true;
      }
    }
    document.getElementById("campaign-rate-text").hidden = true;
    document.getElementById("campaign-ended").hidden = false;
  }

  function showCampaign(campaign) {
    const counts = campaign.counts;
    const done = counts.sent + counts.failed + counts.cancelled;
    showRate(done);
    showNotices(campaign);
    document.getElementById("campaign-status").replaceChildren(statusBadge(campaign.status));
    root.dataset.status = campaign.status;
    for (const element of root.querySelectorAll("[data-count]")) {
      element.textContent = String(counts[element.dataset.count]);
    }
    const progress = document.getElementById("campaign-progress");
    progress.max = Math.max(campaign.jobs_total, 1);
    progress.value = done;
    progress.textContent = done + " of " + campaign.jobs_total;
    document.getElementById("campaign-done").textContent = String(done);
    document.getElementById("campaign-total").textContent = String(campaign.jobs_total);
  }

  function cell(text, className) {
    const element = document.createElement("td");
    if (className) {
      element.className = className;
    }
    element.textContent = text;
    return element;
  }

  function showJobs(page) {
    const rows = page.items.map(function (job) {
      const row = document.createElement("tr");
      const address = document.createElement("td");
      if (job.contact_id) {
        const link = document.createElement("a");
        link.href = "/contacts/" + job.contact_id;
        link.textContent = job.email;
        address.append(link);
      } else {
        address.textContent = job.email;
      }
      const status = document.createElement("td");
      status.append(statusBadge(job.status));
      row.append(address, status, cell(String(job.attempts), "number"), cell(job.message_id || "", "mono"),
                 cell(job.error || ""));
      return row;
    });
    document.querySelector("#jobs tbody").replaceChildren(...rows);
    document.getElementById("jobs-empty").hidden = rows.length > 0;
  }

  async function fetchJson(url) {
    const response = await fetch(url, { headers: { Accept: "application/json", "X-XSRFToken": xsrfToken } });
    if (response.status === 401) {
      // The session has ended: reloading leads to the sign-in page, which brings the user back here.
      window.location.reload();
      throw new Error("the session has ended");
    }
    if (!response.ok) {
      throw new Error(url + " returned HTTP " + response.status);
    }
    return response.json();
  }

  function jobsUrl() {
    const query = new URLSearchParams({ limit: root.dataset.limit });
    if (root.dataset.jobStatus) {
      query.set("status", root.dataset.jobStatus);
    }
    if (root.dataset.after) {
      query.set("after", root.dataset.after);
    }
    return "/api/v1/campaigns/" + campaignId + "/jobs?" + query.toString();
  }

  async function poll() {
    try {
      const campaign = await fetchJson("/api/v1/campaigns/" + campaignId);
      showCampaign(campaign);
      showJobs(await fetchJson(jobsUrl()));
      if (!WATCHED.includes(campaign.status)) {
        showEnded();
        return;
      }
    } catch (error) {
      // The web service may be restarting: keep the page as it is and try again.
      console.warn("campaign update failed:", error);
    }
    window.setTimeout(poll, POLL_INTERVAL_MS);
  }

  window.setTimeout(poll, POLL_INTERVAL_MS);
})();
