// The record's playback page: the composite's progress until it is rendered, the verification
// of every segment against the ledger, the timeline seeking the composite, and a player that
// plays one participant's segments one after another.

const data = JSON.parse(document.getElementById("recording-data").textContent);
const strings = JSON.parse(document.getElementById("yt-strings").textContent);
const $ = (id) => document.getElementById(id);

function t(key, params = {}) {
  const text = strings[key] || key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in params ? String(params[name]) : `{${name}}`));
}

const POLL_MS = 2000;

function renderComposite(composite) {
  const body = $("composite-body");
  if (!body) return;
  const state = $("composite-state");
  const bar = $("composite-progress");
  const video = $("composite-video");
  const status = composite ? composite.status : "none";
  body.dataset.status = status;
  bar.hidden = !(status === "queued" || status === "rendering");
  if (status === "queued") {
    state.textContent = t("rec.composite.queued");
  } else if (status === "rendering") {
    const pct = Math.round(composite.progress * 100);
    bar.value = composite.progress;
    state.textContent = t("rec.composite.rendering", { percent: pct });
  } else if (status === "done") {
    state.textContent = t("rec.composite.done", {
      seconds: Math.round((composite.duration_ms || 0) / 1000),
    });
    if (video.hidden) {
      video.src = composite.url;
      video.hidden = false;
      for (const button of document.querySelectorAll("[data-seek]")) button.disabled = false;
    }
  } else if (status === "failed") {
    state.textContent = t("rec.composite.failed", { error: composite.error });
  } else {
    state.textContent = t("rec.composite.none");
  }
  return status;
}

async function pollComposite() {
  let status = renderComposite(data.composite);
  while (status === "queued" || status === "rendering" || (status === "none" && !data.sealed)) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    try {
      const response = await fetch(data.api.record, {
        headers: { Accept: "application/json" },
      });
      if (!response.ok) continue;
      const fresh = await response.json();
      data.sealed = fresh.sealed;
      status = renderComposite(fresh.composite);
    } catch {
      // The server restarted or the network blinked: ask again on the next round.
    }
  }
}

async function verify() {
  const summary = $("rec-verification");
  if (!summary) return;
  let result;
  try {
    const response = await fetch(data.api.verification, {
      headers: { Accept: "application/json" },
    });
    if (!response.ok) throw new Error(String(response.status));
    result = await response.json();
  } catch {
    summary.dataset.state = "error";
    summary.textContent = t("rec.verify.error");
    return;
  }
  let failed = 0;
  for (const check of result.segments) {
    const cell = document.querySelector(`tr[data-segment="${check.subject_id}"] .rec-check`);
    if (!check.ok) failed += 1;
    if (!cell) continue;
    cell.dataset.state = check.ok ? "ok" : "failed";
    cell.textContent = check.ok ? t("rec.verify.ok_short") : t(`rec.problem.${check.problem}`);
  }
  if (result.manifest && !result.manifest.ok) failed += 1;
  const ok = result.ok;
  summary.dataset.state = ok ? "ok" : "failed";
  summary.textContent = ok
    ? t("rec.verify.all_ok", { count: result.segments.length, size: result.tree_size })
    : t("rec.verify.some_failed", { failed, count: result.segments.length });
}

function placeTimeline() {
  // Positions are set here, not in style attributes: the page's CSP allows no inline styles.
  for (const element of document.querySelectorAll(".rec-bar [data-left]")) {
    element.style.left = `${Number(element.dataset.left)}%`;
    if (element.dataset.width) element.style.width = `${Math.max(0.3, Number(element.dataset.width))}%`;
  }
}

function wireTimeline() {
  for (const button of document.querySelectorAll("[data-seek]")) {
    button.addEventListener("click", () => {
      const video = $("composite-video");
      if (!video || video.hidden) return;
      video.currentTime = Math.max(0, Number(button.dataset.seek));
      video.play().catch(() => {});
      video.focus();
    });
  }
}

function wireTrackPlayers() {
  // One participant's track, its segments one after another (each is a file of its own).
  for (const button of document.querySelectorAll("[data-play-track]")) {
    button.addEventListener("click", () => {
      const track = data.tracks[Number(button.dataset.trackIndex)];
      const player = $(`player-${button.dataset.playTrack}`);
      if (!track || !track.segments.length || !player) return;
      let next = 0;
      player.hidden = false;
      const playNext = () => {
        if (next >= track.segments.length) return;
        player.src = track.segments[next].url;
        next += 1;
        player.play().catch(() => {});
      };
      player.onended = playNext;
      playNext();
    });
  }
}

placeTimeline();
wireTimeline();
wireTrackPlayers();
pollComposite();
verify();
