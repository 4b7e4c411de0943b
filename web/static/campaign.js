// Campaign page: while the campaign is sending, reads its counts and the shown page
// of jobs from the JSON API every 2 seconds and updates the page in place.
"use strict";

(function () {
  const POLL_INTERVAL_MS = 2000;
  const root = document.getElementById("campaign");
  if (!root || root.dataset.status !== "sending") {
    return;
  }
  const campaignId = root.dataset.campaignId;

  function statusBadge(status) {
    const badge = document.createElement("span");
    badge.className = "status status-" + status;
    badge.textContent = status;
    return badge;
  }

  function showCampaign(campaign) {
    const counts = campaign.counts;
    const done = counts.sent + counts.failed;
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
    const response = await fetch(url, { headers: { Accept: "application/json" } });
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
      if (campaign.status !== "sending") {
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
