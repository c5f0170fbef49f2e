// The hearing room: signaling over one websocket (docs/signaling.md), one RTCPeerConnection to
// the media node (which makes every offer), the lobby and hearing views, and the court's
// controls for judge and clerk. Plain ES2020, no framework: the server enforces every rule,
// this page only shows what the role can do.

import { label, t } from "./i18n.js";
import { loadPrefs, openLocalMedia } from "./devices.js";
import { storageGet, storageSet } from "./storage.js";

const config = JSON.parse(document.getElementById("room-config").textContent);
const $ = (id) => document.getElementById(id);
const rootElement = $("room");

// Kept in localStorage (storage.js), so a closed and reopened page resumes too. Per participant:
// a clerk trying a party's link in another tab of the same browser must not take its token.
const RESUME_KEY = `yunting.resume.${config.hearing_id}.${config.participant_id || config.mode}`;
// Close codes after which reconnecting cannot help (docs/signaling.md, "Close codes").
const FINAL_CLOSE_CODES = new Set([1009, 4400, 4401, 4403, 4404, 4409, 4410, 4429]);
const LOBBY_NOT_OPEN = 4425;
const NOT_OPEN_RETRY_MS = 15000;
const BACKOFF_MS = [1000, 2000, 4000, 8000, 15000];
const MAX_MEDIA_RESTARTS = 3;
const DANGEROUS_ACTIONS = new Set(["suspend", "close"]);

// State ----------------------------------------------------------------------------------------

const room = {
  token: null,
  ws: null,
  connected: false,
  welcomed: false,
  final: false,
  leaving: false,
  participantId: config.participant_id,
  role: null,
  grants: { may_publish: config.may_publish, may_subscribe: true, may_control: false },
  participantState: null,
  hearingState: config.hearing_state,
  locked: false,
  presidingId: null,
  roster: [],
  lobbyPosition: null,
  lobbyOf: null,
  health: new Map(),
  heartbeatMs: 5000,
  heartbeatTimer: 0,
  reconnectTimer: 0,
  attempts: 0,
  lastBye: null,
  nextId: 1,
  pending: new Map(),
  mediaUnavailable: false,
  mediaUnavailableShown: false,
  mediaRestarts: 0,
  lastView: null,
};

const local = {
  ready: null,
  stream: null,
  audio: "off",
  video: "off",
  mic: true,
  camera: true,
};

let media = null;
let mediaSeq = 0;
let statsBefore = null;
let ownStats = { rtt_ms: 0, packet_loss_pct: 0, jitter_ms: 0, bitrate_kbps: 0 };
const remote = new Map();
const tiles = new Map();

// Small helpers ----------------------------------------------------------------------------------

/** Build an element: h("button", {class: "btn", onclick: f}, "text", child, ...). */
function h(tag, attrs, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

const ICONS = {
  mic: "M12 2a3 3 0 0 1 3 3v6a3 3 0 0 1-6 0V5a3 3 0 0 1 3-3zm7 9a7 7 0 0 1-6 6.9V21h-2v-3.1A7 7 0 0 1 5 11h2a5 5 0 0 0 10 0h2z",
  "mic-off":
    "M3.3 2 2 3.3l6 6V11a4 4 0 0 0 5.5 3.7l1.2 1.2A6 6 0 0 1 6 11H4a8 8 0 0 0 7 7.9V22h2v-3.1a8 8 0 0 0 3.2-1.2l4.5 4.5 1.3-1.3L3.3 2zM12 2a3 3 0 0 0-3 3v1.2l6 6V5a3 3 0 0 0-3-3zm6 9a6 6 0 0 1-.6 2.6l1.5 1.5A8 8 0 0 0 20 11h-2z",
  camera:
    "M3 6h12a2 2 0 0 1 2 2v1.5l4-2.5v10l-4-2.5V16a2 2 0 0 1-2 2H3a2 2 0 0 1-2-2V8a2 2 0 0 1 2-2z",
  "camera-off":
    "M2.3 2 1 3.3 3.7 6H3a2 2 0 0 0-2 2v8a2 2 0 0 0 2 2h12c.3 0 .6-.1.9-.2l3.8 3.8 1.3-1.3L2.3 2zM21 7l-4 2.5V8a2 2 0 0 0-2-2H9.2L21 17.8V7z",
  signal: "M3 18h3v3H3v-3zm5-5h3v8H8v-8zm5-5h3v13h-3V8zm5-5h3v18h-3V3z",
  leave: "M10 3h9a2 2 0 0 1 2 2v14a2 2 0 0 1-2 2h-9v-2h9V5h-9V3zm1.6 4.6L13 6.2 18.8 12 13 17.8l-1.4-1.4 3.4-3.4H3v-2h12z",
};

function icon(name) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "icon");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "18");
  svg.setAttribute("height", "18");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", ICONS[name]);
  path.setAttribute("fill", "currentColor");
  svg.append(path);
  return svg;
}

function announce(text) {
  const region = $("room-announcer");
  region.textContent = "";
  window.setTimeout(() => {
    region.textContent = text;
  }, 50);
}

/** A visible notice; errors and warnings stay until dismissed, information fades. */
function notify(text, kind = "info", { detail = "", action = null } = {}) {
  const area = $("room-notices");
  const notice = h("div", {
    class: `room-notice notice-${kind}`,
    role: kind === "error" || kind === "warning" ? "alert" : null,
  });
  const detailLine = detail ? h("p", { class: "detail" }, detail) : null;
  notice.append(h("div", { class: "notice-text" }, h("p", {}, text), detailLine));
  const buttons = h("div", { class: "notice-actions" });
  if (action) {
    buttons.append(
      h(
        "button",
        {
          type: "button",
          class: "btn btn-primary btn-small",
          onclick: () => {
            notice.remove();
            action.run();
          },
        },
        action.label,
      ),
    );
  }
  buttons.append(
    h(
      "button",
      {
        type: "button",
        class: "btn btn-secondary btn-small",
        "aria-label": t("room.dismiss_notice"),
        onclick: () => notice.remove(),
      },
      "×",
    ),
  );
  notice.append(buttons);
  area.prepend(notice);
  while (area.children.length > 3) area.lastElementChild.remove();
  if (kind === "info") {
    announce(text);
    window.setTimeout(() => notice.remove(), 12000);
  }
  return notice;
}

function levelFor(lossPct) {
  // HMCTS video hearing thresholds, as the server classifies them (docs/signaling.md).
  if (lossPct < 10) return "good";
  if (lossPct < 15) return "poor";
  return "bad";
}

function mayDo(permission) {
  if (!room.grants.may_control || !room.role) return false;
  const granted = config.controls.permissions[room.role] || [];
  return granted.includes(permission);
}

function me() {
  return room.roster.find((p) => p.participant_id === room.participantId) || null;
}

function roleText(entry) {
  if (entry.participant_id === room.presidingId || entry.presiding) return t("room.presiding");
  return label("role", entry.role);
}

// Signaling --------------------------------------------------------------------------------------

function send(message) {
  const ws = room.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  if (!room.welcomed && message.type !== "hello" && message.type !== "heartbeat") return false;
  ws.send(JSON.stringify({ v: 1, ...message }));
  return true;
}

/** A control or switch of this user: its refusal is shown with what it was about. */
function command(message, description) {
  const id = `c${room.nextId++}`;
  room.pending.set(id, description);
  if (room.pending.size > 50) room.pending.delete(room.pending.keys().next().value);
  if (!send({ ...message, id })) {
    notify(t("room.not_connected"), "error");
    return false;
  }
  return true;
}

function connect() {
  window.clearTimeout(room.reconnectTimer);
  room.reconnectTimer = 0;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}${config.websocket_path}`);
  room.ws = ws;
  room.lastBye = null;
  room.welcomed = false;
  ws.addEventListener("open", () => {
    if (ws !== room.ws) return;
    const hello = { type: "hello", token: room.token };
    const resume = storageGet(RESUME_KEY);
    if (resume) hello.resume_token = resume;
    send(hello);
  });
  ws.addEventListener("message", (event) => {
    if (ws !== room.ws) return;
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    handle(message);
  });
  ws.addEventListener("close", (event) => {
    if (ws !== room.ws) return;
    onClosed(event.code, event.reason);
  });
}

function handle(message) {
  switch (message.type) {
    case "welcome":
      onWelcome(message);
      break;
    case "roster":
      room.roster = message.participants;
      render();
      break;
    case "lobby_position":
      room.lobbyPosition = message.position;
      room.lobbyOf = message.of;
      renderLobby();
      break;
    case "hearing_state":
      onHearingState(message);
      break;
    case "participant_state":
      onParticipantState(message);
      break;
    case "muted":
      notify(t(message.kind === "audio" ? "room.muted_audio" : "room.muted_video"), "warning");
      break;
    case "unmute_requested":
      onUnmuteRequested(message);
      break;
    case "removed":
      onRemoved(message);
      break;
    case "error":
      onError(message);
      break;
    case "recording":
      onRecording(message);
      break;
    case "health":
      room.health = new Map(message.participants.map((p) => [p.participant_id, p]));
      render();
      break;
    case "sdp_offer":
      onOffer(message);
      break;
    case "bye":
      room.lastBye = message.reason;
      break;
    default:
      break;
  }
}

function onWelcome(message) {
  const resumedAfterDrop = room.attempts > 0;
  room.welcomed = true;
  room.connected = true;
  room.attempts = 0;
  room.participantId = message.participant_id;
  room.role = message.role;
  room.grants = message.grants;
  room.hearingState = message.hearing_state;
  room.locked = message.locked;
  room.presidingId = message.presiding_judge_id;
  room.roster = message.roster || [];
  room.lobbyPosition = message.lobby_position;
  room.lobbyOf = null;
  room.heartbeatMs = Math.max(1000, (message.heartbeat_interval_s || 5) * 1000);
  room.mediaUnavailable = false;
  room.mediaRestarts = 0;
  storageSet(RESUME_KEY, message.resume_token);
  setConnection("connected");
  if (resumedAfterDrop) announce(t("room.reconnected"));
  startHeartbeat();
  if (room.grants.may_publish) ensureLocalMedia();
  sendMediaState();
  setParticipantState(message.state);
}

function onHearingState(message) {
  const changed = message.state !== room.hearingState;
  room.hearingState = message.state;
  room.locked = message.locked;
  render();
  if (message.reason === "presiding_judge_disconnected") {
    notify(t("room.judge_dropped"), "warning");
  } else if (message.reason === "recording_failed") {
    notify(t("room.paused_recording_failed"), "warning");
  } else if (changed) {
    const text = t(`room.now.${message.state}`);
    notify(message.reason ? `${text} ${t("room.reason", { reason: message.reason })}` : text);
  } else if (message.action === "lock" || message.action === "unlock") {
    notify(t(message.action === "lock" ? "room.now_locked" : "room.now_unlocked"));
  }
  if (message.state === "closed" || message.state === "cancelled") stopMedia();
}

function onRecording(message) {
  // Judge and clerk only: the server sends nobody else anything about the recording.
  const before = room.recording ? room.recording.state : null;
  room.recording = message;
  renderRecording();
  if (before && before !== message.state && message.state === "recording") {
    announce(t("room.rec.recording", { segments: message.segments }));
  }
}

function renderRecording() {
  const element = $("rec-indicator");
  const rec = room.recording;
  if (!rec) {
    element.hidden = true;
    return;
  }
  element.hidden = false;
  element.dataset.rec = rec.state;
  let text = t(`room.rec.${rec.state}`, { segments: rec.segments });
  if (rec.state === "failed" && rec.reason) text = `${text}: ${rec.reason}`;
  $("rec-text").textContent = text;
  element.title = rec.last_segment_at
    ? t("room.rec.last", { time: new Date(rec.last_segment_at).toLocaleTimeString() })
    : "";
}

function onParticipantState(message) {
  if (message.participant_id !== room.participantId) return;
  if (message.state === "in_hearing") notify(t("room.admitted"));
  else if (message.state === "in_lobby") {
    const why = message.reason ? ` ${t("room.reason", { reason: message.reason })}` : "";
    notify(`${t("room.dismissed")}${why}`, "warning");
  }
  setParticipantState(message.state);
}

function onUnmuteRequested(message) {
  const audio = message.kind === "audio";
  const available = audio ? local.audio === "ok" : local.video === "ok";
  notify(t(audio ? "room.unmute_audio" : "room.unmute_video"), "warning", {
    action: available
      ? {
          label: t(audio ? "room.switch_mic_on" : "room.switch_camera_on"),
          run: () => (audio ? setMic(true) : setCamera(true)),
        }
      : null,
  });
}

function onRemoved(message) {
  stopMedia();
  const reason = message.reason ? t("room.reason", { reason: message.reason }) : "";
  showFinal(message.denied ? "denied" : "removed", reason);
}

function onError(message) {
  if (message.code === "media_unavailable") {
    room.mediaUnavailable = true;
    stopMedia();
    if (!room.mediaUnavailableShown) {
      room.mediaUnavailableShown = true;
      notify(t("room.media_unavailable"), "info");
      renderMediaNote();
    }
    return;
  }
  if (message.code === "media_failed") {
    restartMedia();
    return;
  }
  if (message.code === "not_ready") return;
  if (message.code === "recording_failed") {
    notify(t("room.recording_failed"), "error", { detail: message.message });
    return;
  }
  const about = message.ref ? room.pending.get(message.ref) : "";
  const text = t(`sigerr.${message.code}`);
  notify(about ? `${about}: ${text}` : text, "error", { detail: message.message });
}

function onClosed(code, reason) {
  room.ws = null;
  room.connected = false;
  room.welcomed = false;
  stopHeartbeat();
  stopMedia();
  const why = reason || room.lastBye || "";
  if (room.final) return;
  if (code === 1000) {
    showFinal(why === "hearing_closed" ? "closed" : room.leaving || why === "left" ? "left" : "ended");
    return;
  }
  if (code === 4401 && why === "hello_timeout") {
    scheduleReconnect();
    return;
  }
  if (FINAL_CLOSE_CODES.has(code)) {
    showFinal(finalReasonFor(code, why));
    return;
  }
  if (code === LOBBY_NOT_OPEN) {
    setConnection("waiting");
    showView("connecting");
    $("connecting-heading").textContent = t("room.not_open_heading");
    $("connecting-text").textContent = t("room.not_open_text");
    room.reconnectTimer = window.setTimeout(connect, NOT_OPEN_RETRY_MS);
    return;
  }
  scheduleReconnect();
}

function finalReasonFor(code, why) {
  switch (code) {
    case 4401:
      return "token";
    case 4403:
      if (why === "must_verify") return "must_verify";
      if (why === "removed" || why === "denied") return why;
      return "forbidden";
    case 4404:
      return "no_hearing";
    case 4409:
      return "replaced";
    case 4410:
      return "closed";
    default:
      return "protocol";
  }
}

function scheduleReconnect() {
  const base = BACKOFF_MS[Math.min(room.attempts, BACKOFF_MS.length - 1)];
  room.attempts += 1;
  setConnection("reconnecting");
  // Jitter, so that a whole courtroom dropped by one network blip does not return at once.
  const delay = base * (0.8 + Math.random() * 0.4);
  room.reconnectTimer = window.setTimeout(connect, delay);
}

window.addEventListener("online", () => {
  if (!room.connected && !room.final && room.reconnectTimer) connect();
});

// Heartbeats and network health -------------------------------------------------------------------

function startHeartbeat() {
  stopHeartbeat();
  const beat = async () => {
    ownStats = await collectStats();
    send({ type: "heartbeat", ...ownStats });
    renderNetwork();
  };
  beat();
  room.heartbeatTimer = window.setInterval(beat, room.heartbeatMs);
}

function stopHeartbeat() {
  window.clearInterval(room.heartbeatTimer);
  room.heartbeatTimer = 0;
}

function clamp(value, high) {
  if (!Number.isFinite(value) || value < 0) return 0;
  return Math.min(high, Math.round(value * 10) / 10);
}

/** The heartbeat's figures from the peer connection; zeros before there is media. */
async function collectStats() {
  const zeros = { rtt_ms: 0, packet_loss_pct: 0, jitter_ms: 0, bitrate_kbps: 0 };
  const pc = media ? media.pc : null;
  if (!pc) {
    statsBefore = null;
    return zeros;
  }
  let report;
  try {
    report = await pc.getStats();
  } catch {
    return zeros;
  }
  let rtt = 0;
  let lost = 0;
  let received = 0;
  let jitter = 0;
  let bytes = 0;
  let remoteLoss = 0;
  report.forEach((s) => {
    if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") {
      if (typeof s.currentRoundTripTime === "number") rtt = s.currentRoundTripTime * 1000;
    } else if (s.type === "inbound-rtp") {
      lost += Math.max(0, s.packetsLost || 0);
      received += s.packetsReceived || 0;
      jitter = Math.max(jitter, (s.jitter || 0) * 1000);
      bytes += s.bytesReceived || 0;
    } else if (s.type === "outbound-rtp") {
      bytes += s.bytesSent || 0;
    } else if (s.type === "remote-inbound-rtp") {
      // What the media node reports about our own stream: loss on the way up.
      if (typeof s.fractionLost === "number") remoteLoss = Math.max(remoteLoss, s.fractionLost * 100);
      if (!rtt && typeof s.roundTripTime === "number") rtt = s.roundTripTime * 1000;
    }
  });
  const now = performance.now();
  let loss = 0;
  let kbps = 0;
  if (statsBefore && statsBefore.pc === pc) {
    const newlyLost = lost - statsBefore.lost;
    const newlyReceived = received - statsBefore.received;
    if (newlyLost > 0) loss = (100 * newlyLost) / (newlyLost + Math.max(0, newlyReceived));
    const elapsed = now - statsBefore.at;
    // bytes * 8 / milliseconds = kilobits per second
    if (elapsed > 0) kbps = ((bytes - statsBefore.bytes) * 8) / elapsed;
  }
  statsBefore = { pc, lost, received, bytes, at: now };
  return {
    rtt_ms: clamp(rtt, 600000),
    packet_loss_pct: clamp(Math.max(loss, remoteLoss), 100),
    jitter_ms: clamp(jitter, 600000),
    bitrate_kbps: clamp(kbps, 1000000),
  };
}

// Local camera and microphone -------------------------------------------------------------------

function ensureLocalMedia() {
  if (local.ready) return local.ready;
  local.ready = openLocalMedia({ audio: true, video: true, prefs: loadPrefs() }).then((result) => {
    local.stream = result.stream;
    local.audio = result.audio;
    local.video = result.video;
    for (const track of result.stream.getAudioTracks()) track.enabled = local.mic;
    for (const track of result.stream.getVideoTracks()) track.enabled = local.camera;
    if (result.audio !== "ok" || result.video !== "ok") {
      const missing = [];
      if (result.video !== "ok") missing.push(t(`room.local_video_${result.video}`));
      if (result.audio !== "ok") missing.push(t(`room.local_audio_${result.audio}`));
      notify(missing.join(" "), "warning");
    }
    sendMediaState();
    render();
    return result;
  });
  return local.ready;
}

function localTrack(kind) {
  if (!local.stream) return null;
  const tracks = kind === "audio" ? local.stream.getAudioTracks() : local.stream.getVideoTracks();
  return tracks[0] || null;
}

function sendMediaState() {
  if (!room.welcomed || !room.grants.may_publish) return;
  send({
    type: "media_state",
    mic: local.mic && local.audio === "ok",
    camera: local.camera && local.video === "ok",
  });
}

function setMic(on) {
  local.mic = on;
  const track = localTrack("audio");
  if (track) track.enabled = on;
  sendMediaState();
  render();
  announce(t(on ? "room.mic_is_on" : "room.mic_is_off"));
}

function setCamera(on) {
  local.camera = on;
  const track = localTrack("video");
  if (track) track.enabled = on;
  sendMediaState();
  render();
  announce(t(on ? "room.camera_is_on" : "room.camera_is_off"));
}

// Media: one peer connection to the media node, which makes every offer -----------------------

function startMedia() {
  if (media || !room.welcomed || room.mediaUnavailable) return;
  if (room.participantState !== "in_hearing") return;
  if (typeof RTCPeerConnection === "undefined") {
    notify(t("room.media_unsupported"), "error");
    room.mediaUnavailable = true;
    return;
  }
  // max-bundle, like the media node: one transport for every m-line, which is also what keeps
  // m-lines added by a renegotiation working (docs/design/aiortc-encoded-forwarding.md).
  const pc = new RTCPeerConnection({
    iceServers: config.ice_servers || [],
    bundlePolicy: "max-bundle",
  });
  mediaSeq += 1;
  const m = { pc, chain: Promise.resolve(), tracks: new Map(), endSent: false, seq: mediaSeq };
  media = m;
  pc.addEventListener("icecandidate", (event) => {
    if (media !== m) return;
    const candidate = event.candidate;
    if (!candidate || !candidate.candidate) {
      // End of candidates, said once.
      if (!m.endSent) {
        m.endSent = true;
        send({ type: "ice_candidate", candidate: "" });
      }
      return;
    }
    const message = { type: "ice_candidate", candidate: candidate.candidate };
    if (candidate.sdpMid !== null && candidate.sdpMid !== undefined) message.sdpMid = candidate.sdpMid;
    if (candidate.sdpMLineIndex !== null && candidate.sdpMLineIndex !== undefined) {
      message.sdpMLineIndex = candidate.sdpMLineIndex;
    }
    send(message);
  });
  pc.addEventListener("track", () => {
    if (media === m) assignRemoteTracks(m);
  });
  pc.addEventListener("connectionstatechange", () => {
    if (media !== m) return;
    if (pc.connectionState === "failed") restartMedia();
    renderMediaNote();
  });
  send({ type: "media_start", id: `media-${m.seq}` });
  renderMediaNote();
}

function stopMedia() {
  const m = media;
  media = null;
  statsBefore = null;
  if (m) {
    try {
      m.pc.close();
    } catch {
      // Already closed.
    }
  }
  if (remote.size) {
    remote.clear();
    renderTiles();
  }
  renderMediaNote();
}

function restartMedia() {
  stopMedia();
  room.mediaRestarts += 1;
  if (room.mediaRestarts > MAX_MEDIA_RESTARTS) {
    notify(t("room.media_failed"), "error");
    return;
  }
  startMedia();
}

function onOffer(message) {
  const m = media;
  if (!m) return; // left the hearing meanwhile: the media node closes its side too
  // Strictly one at a time, in the order they came.
  m.chain = m.chain
    .then(() => applyOffer(m, message))
    .catch((error) => {
      if (media !== m) return;
      console.warn("could not apply the media offer", error);
      restartMedia();
    });
}

async function applyOffer(m, message) {
  if (media !== m) return;
  const pc = m.pc;
  await pc.setRemoteDescription({ type: "offer", sdp: message.sdp });
  const publish = message.publish || {};
  if (publish.audio != null || publish.video != null) await ensureLocalMedia();
  if (media !== m) return;
  for (const transceiver of pc.getTransceivers()) {
    const mid = transceiver.mid;
    if (mid === null) continue;
    let kind = null;
    if (publish.audio != null && mid === publish.audio) kind = "audio";
    else if (publish.video != null && mid === publish.video) kind = "video";
    if (!kind) continue;
    await transceiver.sender.replaceTrack(localTrack(kind));
    transceiver.direction = "sendonly";
  }
  m.tracks = new Map((message.tracks || []).map((track) => [String(track.mid), track]));
  const answer = await pc.createAnswer();
  await pc.setLocalDescription(answer);
  if (media !== m) return;
  send({ type: "sdp_answer", sdp: pc.localDescription.sdp });
  assignRemoteTracks(m);
}

/** Whose track each receiving m-line carries, from the latest offer's `tracks`. */
function assignRemoteTracks(m) {
  remote.clear();
  for (const transceiver of m.pc.getTransceivers()) {
    const info = transceiver.mid !== null ? m.tracks.get(transceiver.mid) : null;
    const track = transceiver.receiver ? transceiver.receiver.track : null;
    if (!info || !track) continue; // not listed: inactive, its tile shows no media
    const entry = remote.get(info.participant_id) || { audio: null, video: null };
    entry[info.kind] = track;
    remote.set(info.participant_id, entry);
  }
  renderTiles();
}

// Views ------------------------------------------------------------------------------------------

function setParticipantState(state) {
  room.participantState = state;
  if (state === "in_hearing") {
    room.lobbyPosition = null;
    showView("hearing");
    startMedia();
  } else {
    stopMedia();
    if (state === "in_lobby" || state === "verified") showView("lobby");
  }
  render();
}

function showView(view) {
  const before = room.lastView;
  room.lastView = view;
  const active = document.activeElement;
  for (const name of ["connecting", "lobby", "hearing", "final"]) $(`view-${name}`).hidden = name !== view;
  rootElement.dataset.view = view;
  $("room-toolbar").hidden = !(view === "lobby" || view === "hearing");
  // Keep keyboard focus somewhere sensible when the part of the page it was in goes away.
  if (before !== view && (!active || active === document.body || active.closest("[hidden]"))) {
    const heading = $(`${view}-heading`);
    if (heading) heading.focus();
  }
  if (view === "lobby") attachLocalPreview($("lobby-preview"), $("lobby-preview-empty"));
}

function showFinal(reason, detail = "") {
  room.final = true;
  window.clearTimeout(room.reconnectTimer);
  stopHeartbeat();
  stopMedia();
  if (local.stream) for (const track of local.stream.getTracks()) track.stop();
  setConnection("ended");
  $("final-heading").textContent = t(`final.${reason}.title`);
  $("final-text").textContent = t(`final.${reason}.text`);
  $("final-detail").textContent = detail;
  const actions = $("final-actions");
  actions.replaceChildren();
  if (reason === "must_verify" && config.mode === "participant") {
    actions.append(h("a", { class: "btn btn-primary", href: landingPath() }, t("final.verify_again")));
  }
  if (reason === "replaced" || reason === "ended" || reason === "protocol" || reason === "unavailable") {
    const reload = () => location.reload();
    actions.append(
      h("button", { type: "button", class: "btn btn-primary", onclick: reload }, t("final.reconnect")),
    );
  }
  if (reason === "signed_out") {
    const next = encodeURIComponent(location.pathname);
    actions.append(h("a", { class: "btn btn-primary", href: `/login?next=${next}` }, t("final.sign_in")));
  }
  if (config.mode === "staff") {
    const back = h(
      "a",
      { class: "btn btn-secondary", href: config.hearing_page },
      t("final.back_to_hearing"),
    );
    actions.append(back);
  }
  showView("final");
  $("final-heading").focus();
}

function setConnection(stateName) {
  const indicator = $("conn-indicator");
  const before = indicator.dataset.conn;
  indicator.dataset.conn = stateName;
  $("conn-text").textContent = t(`room.conn.${stateName}`);
  const offline = stateName !== "connected";
  rootElement.classList.toggle("is-offline", offline);
  if (before === "connected" && stateName === "reconnecting") announce(t("room.conn.reconnecting"));
  renderNetwork();
  renderPanel();
}

function renderNetwork() {
  const element = $("net-indicator");
  if (!room.connected) {
    element.hidden = true;
    return;
  }
  const level = levelFor(ownStats.packet_loss_pct);
  element.hidden = false;
  element.dataset.level = level;
  $("net-text").textContent = t(`health.${level}`);
  element.title = t("room.net_detail", {
    rtt: Math.round(ownStats.rtt_ms),
    loss: ownStats.packet_loss_pct,
  });
}

function renderBanner() {
  const banner = $("hearing-banner");
  banner.className = `hearing-banner hstate-${room.hearingState}`;
  $("hearing-banner-text").textContent = t(`room.banner.${room.hearingState}`);
  $("lock-indicator").hidden = !room.locked;
}

function renderLobby() {
  const position = $("lobby-position");
  if (room.lobbyPosition) {
    position.textContent = room.lobbyOf
      ? t("lobby.position_of", { position: room.lobbyPosition, of: room.lobbyOf })
      : t("lobby.position", { position: room.lobbyPosition });
  } else {
    position.textContent = "";
  }
  const waiting = room.hearingState === "in_session" ? t("lobby.in_session") : t("lobby.not_started");
  $("lobby-state").textContent = waiting;
}

function attachLocalPreview(video, empty) {
  const show = local.stream && local.video === "ok" && local.camera;
  if (show && video.srcObject !== local.stream) {
    video.srcObject = local.stream;
    video.play().catch(() => {});
  }
  video.hidden = !show;
  if (empty) {
    empty.hidden = Boolean(show);
    empty.textContent = !room.grants.may_publish
      ? t("room.observer_preview")
      : local.video === "ok"
        ? t("room.camera_is_off")
        : t("room.no_camera");
  }
}

function renderToolbar() {
  const publish = room.grants.may_publish;
  const mic = $("toggle-mic");
  const camera = $("toggle-camera");
  mic.hidden = !publish;
  camera.hidden = !publish;
  const mine = me();
  const micOn = local.mic && local.audio === "ok";
  const cameraOn = local.camera && local.video === "ok";
  mic.disabled = local.audio !== "ok";
  camera.disabled = local.video !== "ok";
  mic.setAttribute("aria-pressed", micOn ? "true" : "false");
  camera.setAttribute("aria-pressed", cameraOn ? "true" : "false");
  mic.replaceChildren(
    icon(micOn ? "mic" : "mic-off"),
    h("span", {}, t(micOn ? "room.mic_on" : "room.mic_off")),
  );
  camera.replaceChildren(
    icon(cameraOn ? "camera" : "camera-off"),
    h("span", {}, t(cameraOn ? "room.camera_on" : "room.camera_off")),
  );
  const mutedNote = [];
  if (mine && mine.muted_audio) mutedNote.push(t("room.you_muted_audio"));
  if (mine && mine.muted_video) mutedNote.push(t("room.you_muted_video"));
  $("muted-note").textContent = mutedNote.join(" ");
  $("muted-note").hidden = mutedNote.length === 0;
  const leaveText = t(config.mode === "staff" ? "room.leave_staff" : "room.leave");
  $("leave").replaceChildren(icon("leave"), h("span", {}, leaveText));
}

function renderMediaNote() {
  const note = $("media-note");
  if (!note) return;
  let text = "";
  if (room.participantState === "in_hearing") {
    if (room.mediaUnavailable) text = t("room.media_unavailable_short");
    else if (media && media.pc.connectionState !== "connected") text = t("room.media_connecting");
  }
  note.textContent = text;
  note.hidden = !text;
}

function render() {
  renderBanner();
  renderLobby();
  renderToolbar();
  renderTiles();
  renderPanel();
  renderMediaNote();
  if (room.lastView === "lobby") attachLocalPreview($("lobby-preview"), $("lobby-preview-empty"));
}

// The video grid ------------------------------------------------------------------------------------

function initials(name) {
  const text = (name || "").replace(/^(审判长|审判员|书记员|法官)\s*/, "").trim();
  return text ? Array.from(text)[0].toUpperCase() : "?";
}

function createTile(participantId) {
  const video = h("video", { class: "tile-video", autoplay: true, playsinline: true });
  video.muted = true; // sound plays through the tile's <audio>, never the preview's
  const audio = h("audio", { autoplay: true });
  const tile = {
    root: h("li", { class: "tile", dataset: { pid: participantId } }),
    video,
    audio,
    placeholder: h(
      "div",
      { class: "tile-placeholder", "aria-hidden": "true" },
      h("span", { class: "avatar" }),
    ),
    name: h("span", { class: "tile-name" }),
    role: h("span", { class: "tile-role" }),
    flags: h("span", { class: "tile-flags" }),
    videoKey: "",
    audioKey: "",
  };
  tile.root.append(
    tile.video,
    tile.audio,
    tile.placeholder,
    h("div", { class: "tile-caption" }, h("span", { class: "tile-who" }, tile.name, tile.role), tile.flags),
  );
  return tile;
}

// Remote tracks are "muted" until their first packets arrive: the tile shows the person's
// initial instead of a black picture until then.
const watchedTracks = new WeakSet();

function watchTrack(track) {
  if (watchedTracks.has(track)) return;
  watchedTracks.add(track);
  track.addEventListener("mute", renderTiles);
  track.addEventListener("unmute", renderTiles);
}

function playMedia(element) {
  const playing = element.play();
  if (playing && playing.catch) {
    playing.catch((error) => {
      // Browsers refuse sound until the person has interacted with the page.
      if (error && error.name === "NotAllowedError" && element.tagName === "AUDIO") {
        $("enable-sound").hidden = false;
      }
    });
  }
}

function updateTile(tile, entry) {
  const self = entry.participant_id === room.participantId;
  const presiding = entry.participant_id === room.presidingId || entry.presiding;
  tile.root.classList.toggle("presiding", presiding);
  tile.root.classList.toggle("self", self);
  tile.root.classList.toggle("reconnecting", entry.presence !== "online");
  tile.name.textContent = self ? t("room.you_name", { name: entry.display_name }) : entry.display_name;
  tile.role.textContent = roleText(entry);
  tile.placeholder.firstChild.textContent = initials(entry.display_name);

  let videoTrack = null;
  let audioTrack = null;
  if (self) {
    if (local.camera && local.video === "ok") videoTrack = localTrack("video");
  } else {
    const tracks = remote.get(entry.participant_id);
    const showable = entry.camera && !entry.muted_video && entry.presence === "online";
    if (tracks && showable) videoTrack = tracks.video;
    if (tracks) audioTrack = tracks.audio;
  }
  const videoKey = videoTrack ? videoTrack.id : "";
  if (videoKey !== tile.videoKey) {
    tile.videoKey = videoKey;
    tile.video.srcObject = videoTrack ? new MediaStream([videoTrack]) : null;
    if (videoTrack) playMedia(tile.video);
  }
  const audioKey = audioTrack ? audioTrack.id : "";
  if (audioKey !== tile.audioKey) {
    tile.audioKey = audioKey;
    tile.audio.srcObject = audioTrack ? new MediaStream([audioTrack]) : null;
    if (audioTrack) playMedia(tile.audio);
  }
  if (videoTrack && !self) watchTrack(videoTrack);
  const showVideo = Boolean(videoTrack) && (self || !videoTrack.muted);
  tile.video.hidden = !showVideo;
  tile.placeholder.hidden = showVideo;

  const micOn = self ? local.mic && local.audio === "ok" : entry.mic;
  const cameraOn = self ? local.camera && local.video === "ok" : entry.camera;
  const flags = [
    micOn ? null : iconFlag("mic-off", t("room.flag_mic_off")),
    cameraOn ? null : iconFlag("camera-off", t("room.flag_camera_off")),
    ...statusFlags(entry),
    healthFlag(entry, { text: false }),
  ];
  tile.flags.replaceChildren(...flags.filter(Boolean));
}

function renderTiles() {
  const grid = $("video-grid");
  if (!grid) return;
  let people = room.roster.filter((p) => p.state === "in_hearing");
  const listed = people.some((p) => p.participant_id === room.participantId);
  if (room.participantState === "in_hearing" && !listed) {
    // Our own entry may come a moment after admission.
    people.push({
      participant_id: room.participantId,
      role: room.role,
      display_name: "",
      state: "in_hearing",
      presence: "online",
      presiding: false,
      mic: local.mic,
      camera: local.camera,
      muted_audio: false,
      muted_video: false,
    });
  }
  const presiding = people.filter((p) => p.participant_id === room.presidingId || p.presiding);
  people = [...presiding, ...people.filter((p) => !presiding.includes(p))];
  grid.dataset.count = String(people.length);
  const keep = new Set();
  people.forEach((entry, index) => {
    let tile = tiles.get(entry.participant_id);
    if (!tile) {
      tile = createTile(entry.participant_id);
      tiles.set(entry.participant_id, tile);
    }
    keep.add(entry.participant_id);
    updateTile(tile, entry);
    // Move a tile only when its place changed: moving a playing video pauses it.
    if (grid.children[index] !== tile.root) {
      grid.insertBefore(tile.root, grid.children[index] || null);
      if (tile.videoKey) playMedia(tile.video);
      if (tile.audioKey) playMedia(tile.audio);
    }
  });
  for (const [participantId, tile] of tiles) {
    if (keep.has(participantId)) continue;
    tile.video.srcObject = null;
    tile.audio.srcObject = null;
    tile.root.remove();
    tiles.delete(participantId);
  }
  $("grid-empty").hidden = people.length > 0;
}

// The side panel: the court's controls, or the list of people --------------------------------------

const reasonDialog = {
  element: $("reason-dialog"),
  onConfirm: null,
  required: false,
  returnFocus: null,
};

function askReason({ title, text, confirm, required = false, danger = false, run }) {
  const dialog = reasonDialog.element;
  reasonDialog.onConfirm = run;
  reasonDialog.required = required;
  reasonDialog.returnFocus = document.activeElement;
  $("reason-title").textContent = title;
  $("reason-text").textContent = text || "";
  $("reason-label").textContent = required ? t("roomctl.reason_required") : t("roomctl.reason_optional");
  const field = $("f-room-reason");
  field.value = "";
  field.required = required;
  $("reason-err").hidden = true;
  const button = $("reason-confirm");
  button.textContent = confirm;
  button.className = `btn ${danger ? "btn-danger" : "btn-primary"}`;
  dialog.showModal();
  field.focus();
}

$("reason-form").addEventListener("submit", (event) => {
  const submitter = event.submitter;
  if (submitter && submitter.value === "cancel") return;
  const reason = $("f-room-reason").value.trim();
  if (reasonDialog.required && !reason) {
    event.preventDefault();
    $("reason-err").hidden = false;
    $("f-room-reason").focus();
    return;
  }
  const run = reasonDialog.onConfirm;
  reasonDialog.onConfirm = null;
  if (run) window.setTimeout(() => run(reason), 0);
});

reasonDialog.element.addEventListener("close", () => {
  const target = reasonDialog.returnFocus;
  if (target && target.isConnected) target.focus();
});

function actionButton({ text, labelText, focusKey, kind = "secondary", onClick }) {
  return h(
    "button",
    {
      type: "button",
      class: `btn btn-${kind} btn-small`,
      "aria-label": labelText || null,
      dataset: { focusKey },
      disabled: !room.connected,
      onclick: onClick,
    },
    text,
  );
}

/** An icon whose meaning is read out, not shown. */
function iconFlag(name, text) {
  return h("span", { class: "flag" }, icon(name), h("span", { class: "visually-hidden" }, text));
}

/** Muted by the court, reconnecting, offline: what everyone should notice at once. */
function statusFlags(entry) {
  const flags = [];
  if (entry.muted_audio) flags.push(h("span", { class: "flag flag-court" }, t("room.flag_muted_audio")));
  if (entry.muted_video) flags.push(h("span", { class: "flag flag-court" }, t("room.flag_muted_video")));
  if (entry.presence !== "online") {
    flags.push(h("span", { class: "flag flag-warn" }, label("room.presence", entry.presence)));
  }
  return flags;
}

/** Someone's network health, for judge and clerk only (from the server's `health`). */
function healthFlag(entry, { text }) {
  const health = room.health.get(entry.participant_id);
  if (!health || !room.grants.may_control) return null;
  const level = t(`health.${health.level}`);
  const title = t("room.net_detail", {
    rtt: Math.round(health.rtt_ms),
    loss: health.packet_loss_pct,
  });
  return h(
    "span",
    { class: `flag health health-${health.level}`, title },
    icon("signal"),
    text ? level : h("span", { class: "visually-hidden" }, level),
  );
}

function personLine(entry) {
  const bits = [
    h("span", { class: "person-name" }, entry.display_name),
    h("span", { class: "muted" }, ` · ${roleText(entry)}`),
  ];
  if (entry.participant_id === room.participantId) {
    bits.push(h("span", { class: "muted" }, ` · ${t("room.you")}`));
  }
  const status = [];
  if (entry.state === "in_hearing") {
    status.push(
      iconFlag(entry.mic ? "mic" : "mic-off", t(entry.mic ? "room.flag_mic_on" : "room.flag_mic_off")),
      iconFlag(
        entry.camera ? "camera" : "camera-off",
        t(entry.camera ? "room.flag_camera_on" : "room.flag_camera_off"),
      ),
      ...statusFlags(entry),
    );
  } else if (entry.presence !== "online") {
    status.push(...statusFlags(entry));
  }
  const health = healthFlag(entry, { text: true });
  if (health) status.push(health);
  return [
    h("div", { class: "person-line" }, ...bits),
    status.length ? h("div", { class: "person-status" }, ...status) : null,
  ];
}

function controlsFor(entry) {
  const name = entry.display_name;
  const pid = entry.participant_id;
  // Nobody may act on themselves or on the presiding judge (the server refuses it too).
  if (pid === room.participantId || pid === room.presidingId || entry.presiding) return [];
  const bench = entry.role === "judge" || entry.role === "clerk";
  const buttons = [];
  // One button: its short text, its full name for screen readers, the message it sends, and
  // whether it first asks for a reason.
  const add = (key, message, { kind = "secondary", ask = null } = {}) => {
    const fullName = t(`roomctl.${key}_label`, { name });
    const run = (reason) =>
      command({ ...message, participant_id: pid, ...(ask ? { reason } : {}) }, fullName);
    const confirm = () =>
      askReason({
        title: fullName,
        text: t(`roomctl.${key}_text`),
        confirm: t(`roomctl.${key}`),
        ...ask,
        run,
      });
    buttons.push(
      actionButton({
        text: t(`roomctl.${key}`),
        labelText: fullName,
        focusKey: `${key}-${pid}`,
        kind,
        onClick: ask ? confirm : () => run(""),
      }),
    );
  };
  if (entry.state === "in_lobby") {
    if (mayDo("lobby.admit")) add("admit", { type: "admit" }, { kind: "primary" });
    if (mayDo("lobby.deny")) add("deny", { type: "deny" }, { kind: "quiet", ask: { danger: true } });
  } else if (entry.state === "in_hearing") {
    // Observers publish nothing, so there is nothing to mute.
    if (mayDo("participant.mute") && entry.role !== "observer") {
      for (const kind of ["audio", "video"]) {
        const muted = kind === "audio" ? entry.muted_audio : entry.muted_video;
        add(muted ? `ask_unmute_${kind}` : `mute_${kind}`, {
          type: muted ? "ask_unmute" : "mute",
          kind,
        });
      }
    }
    if (mayDo("participant.dismiss") && !bench) add("dismiss", { type: "dismiss" }, { ask: {} });
  } else if (entry.state === "disconnected" && mayDo("participant.call_in")) {
    add("call_in", { type: "call_in" });
  }
  if (mayDo("participant.remove") && !bench && entry.state !== "in_lobby") {
    add("remove", { type: "remove" }, { kind: "quiet", ask: { required: true, danger: true } });
  }
  return buttons;
}

function peopleSection(id, title, entries, emptyText) {
  const heading = h("h3", { id: `${id}-heading`, tabindex: "-1" }, `${title} (${entries.length})`);
  const list = h(
    "ul",
    { class: "people-list", "aria-labelledby": `${id}-heading` },
    entries.map((entry) => {
      const controls = room.grants.may_control ? controlsFor(entry) : [];
      return h(
        "li",
        { class: "person", dataset: { pid: entry.participant_id } },
        personLine(entry),
        controls.length ? h("div", { class: "person-actions" }, controls) : null,
      );
    }),
  );
  return h(
    "section",
    { class: "panel-section", id, "aria-labelledby": `${id}-heading` },
    heading,
    entries.length ? list : h("p", { class: "muted" }, emptyText),
  );
}

function hearingControls() {
  const section = h("section", {
    class: "panel-section",
    id: "panel-hearing",
    "aria-labelledby": "panel-hearing-heading",
  });
  section.append(h("h3", { id: "panel-hearing-heading", tabindex: "-1" }, t("roomctl.hearing")));
  const possible = config.controls.actions.filter((a) => a.from.includes(room.hearingState));
  const available = possible.map((a) => a.action);
  const mine = possible.filter((a) => mayDo(a.permission)).map((a) => a.action);
  const buttons = mine.map((action) =>
    actionButton({
      text: label("action", action),
      focusKey: `action-${action}`,
      kind: DANGEROUS_ACTIONS.has(action) ? "danger" : "primary",
      onClick: () => {
        const run = (reason) => command({ type: "hearing_action", action, reason }, label("action", action));
        if (DANGEROUS_ACTIONS.has(action)) {
          askReason({
            title: t("roomctl.confirm_action", { action: label("action", action) }),
            text: t(`roomctl.action_text.${action}`),
            confirm: label("action", action),
            danger: true,
            run,
          });
        } else {
          run($("f-action-reason") ? $("f-action-reason").value.trim() : "");
        }
      },
    }),
  );
  if (buttons.length) {
    section.append(
      h(
        "div",
        { class: "field" },
        h("label", { for: "f-action-reason" }, t("roomctl.reason_optional")),
        h("input", { id: "f-action-reason", type: "text", maxlength: "500", autocomplete: "off" }),
      ),
      h("div", { class: "action-buttons" }, buttons),
    );
  } else {
    section.append(h("p", { class: "muted" }, t("roomctl.no_actions")));
  }
  const others = available.filter((action) => !mine.includes(action));
  if (others.length) {
    const names = others.map((a) => label("action", a)).join(t("roomctl.separator"));
    section.append(h("p", { class: "hint" }, t("roomctl.others", { actions: names })));
  }
  if (mayDo("hearing.lock") && room.hearingState !== "closed") {
    const locked = room.locked;
    section.append(
      h(
        "div",
        { class: "lock-row" },
        actionButton({
          text: t(locked ? "roomctl.unlock" : "roomctl.lock"),
          focusKey: "lock",
          onClick: () =>
            command({ type: locked ? "unlock" : "lock" }, t(locked ? "roomctl.unlock" : "roomctl.lock")),
        }),
        h("p", { class: "hint" }, t(locked ? "roomctl.locked_hint" : "roomctl.lock_hint")),
      ),
    );
  }
  return section;
}

let panelSignature = "";

function renderPanel() {
  const panel = $("room-panel-body");
  if (!panel || (!room.welcomed && !room.roster.length)) return;
  // Rebuilt only when something it shows changed, so typing and focus are not disturbed.
  const signature = JSON.stringify([
    room.connected,
    room.role,
    room.grants,
    room.hearingState,
    room.locked,
    room.presidingId,
    room.roster,
    room.grants.may_control ? [...room.health.values()].map((e) => [e.participant_id, e.level]) : [],
  ]);
  if (signature === panelSignature) return;
  panelSignature = signature;
  const active = document.activeElement;
  const focusKey = active && panel.contains(active) ? active.dataset.focusKey || active.id : "";
  const focusSection = active && panel.contains(active) ? active.closest(".panel-section") : null;
  const sectionId = focusSection ? focusSection.id : "";
  const reasonValue = $("f-action-reason") ? $("f-action-reason").value : "";
  const parts = [];
  const byState = (state) => room.roster.filter((p) => p.state === state);
  const present = () =>
    peopleSection("panel-present", t("roomctl.present"), byState("in_hearing"), t("roomctl.present_empty"));
  if (room.grants.may_control) {
    $("panel-heading").textContent = t("roomctl.heading");
    parts.push(hearingControls());
    const lobby = byState("in_lobby");
    parts.push(peopleSection("panel-lobby", t("roomctl.lobby"), lobby, t("roomctl.lobby_empty")));
    parts.push(present());
    const absent = byState("disconnected");
    if (absent.length) parts.push(peopleSection("panel-absent", t("roomctl.absent"), absent, ""));
  } else {
    $("panel-heading").textContent = t("room.people");
    parts.push(present());
  }
  panel.replaceChildren(...parts);
  if ($("f-action-reason")) $("f-action-reason").value = reasonValue;
  // Put keyboard focus back where it was, or on the section it was in when its button went.
  if (focusKey) {
    const again =
      panel.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`) ||
      (focusKey === "f-action-reason" ? $("f-action-reason") : null);
    if (again && !again.disabled) again.focus();
    else if (sectionId && $(`${sectionId}-heading`)) $(`${sectionId}-heading`).focus();
  }
}

// Toolbar ----------------------------------------------------------------------------------------

$("toggle-mic").addEventListener("click", () => setMic(!local.mic));
$("toggle-camera").addEventListener("click", () => setCamera(!local.camera));
$("enable-sound").addEventListener("click", () => {
  $("enable-sound").hidden = true;
  for (const tile of tiles.values()) if (tile.audioKey) playMedia(tile.audio);
});
$("leave").addEventListener("click", () => {
  askReason({
    title: t(config.mode === "staff" ? "room.leave_staff_confirm" : "room.leave_confirm"),
    text: t(config.mode === "staff" ? "room.leave_staff_text" : "room.leave_text"),
    confirm: t(config.mode === "staff" ? "room.leave_staff" : "room.leave"),
    danger: true,
    run: (reason) => {
      room.leaving = true;
      if (!send({ type: "leave", reason })) showFinal("left");
    },
  });
});

// Start -------------------------------------------------------------------------------------------

function landingPath() {
  return location.pathname.replace(/\/room\/?$/, "");
}

async function obtainToken() {
  if (config.mode === "participant") {
    const match = location.pathname.match(/^\/j\/([^/]+)\/room\/?$/);
    return match ? decodeURIComponent(match[1]) : null;
  }
  let response;
  try {
    response = await fetch(config.room_token_path, {
      method: "POST",
      headers: { Accept: "application/json", "X-CSRF-Token": rootElement.dataset.csrf || "" },
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    showFinal("unavailable");
    return null;
  }
  if (response.ok) return (await response.json()).token;
  const reasons = { 401: "signed_out", 403: "staff_forbidden", 404: "no_hearing", 409: "closed" };
  showFinal(reasons[response.status] || "unavailable");
  return null;
}

async function start() {
  if (config.mode === "participant") {
    // The conduct declaration and the device check come first (join.js records both here).
    const pid = config.participant_id;
    if (!storageGet(`yunting.declared.${pid}`) || !storageGet(`yunting.devicecheck.${pid}`)) {
      location.replace(landingPath());
      return;
    }
  }
  setConnection("connecting");
  renderBanner();
  room.token = await obtainToken();
  if (!room.token || room.final) return;
  connect();
}

// For the end-to-end tests: what the page believes, and what media it has received.
window.yuntingRoom = {
  state() {
    return {
      participantState: room.participantState,
      hearingState: room.hearingState,
      connected: room.connected,
      lobbyPosition: room.lobbyPosition,
      participantId: room.participantId,
      // Who the page knows of, by name: the tests look up whose media they received.
      people: room.roster.map((p) => ({
        participant_id: p.participant_id,
        display_name: p.display_name,
        role: p.role,
        state: p.state,
        muted_audio: p.muted_audio,
        muted_video: p.muted_video,
      })),
      mediaConnection: media ? media.pc.connectionState : null,
      recording: room.recording || null,
    };
  },
  /** What this page's peer connection sent, per kind (observers must send nothing). */
  async sentStats() {
    const result = { audio_packets_sent: 0, video_packets_sent: 0 };
    const m = media;
    if (!m) return result;
    const report = await m.pc.getStats();
    report.forEach((s) => {
      if (s.type === "outbound-rtp") result[`${s.kind}_packets_sent`] += s.packetsSent || 0;
    });
    return result;
  },
  /** The page's own camera and microphone stream (the A/V alignment test records it too). */
  localStream() {
    return local.stream || null;
  },
  async mediaStats() {
    const result = {};
    const m = media;
    if (!m) return result;
    const report = await m.pc.getStats();
    const byTrackId = new Map();
    for (const transceiver of m.pc.getTransceivers()) {
      if (transceiver.receiver && transceiver.receiver.track && transceiver.mid !== null) {
        byTrackId.set(transceiver.receiver.track.id, transceiver.mid);
      }
    }
    report.forEach((s) => {
      if (s.type !== "inbound-rtp") return;
      const mid = s.mid !== undefined ? String(s.mid) : byTrackId.get(s.trackIdentifier);
      const info = mid !== undefined ? m.tracks.get(mid) : null;
      if (!info) return;
      const entry = result[info.participant_id] || {
        video_frames_decoded: 0,
        video_packets_received: 0,
        audio_samples_received: 0,
        audio_packets_received: 0,
      };
      if (s.kind === "video") {
        entry.video_frames_decoded += s.framesDecoded || 0;
        entry.video_packets_received += s.packetsReceived || 0;
      } else if (s.kind === "audio") {
        // Samples decoded from packets that arrived: the jitter buffer conceals silence when
        // none do, and Chrome counts concealed samples as received too.
        entry.audio_samples_received += (s.totalSamplesReceived || 0) - (s.concealedSamples || 0);
        entry.audio_packets_received += s.packetsReceived || 0;
      }
      result[info.participant_id] = entry;
    });
    return result;
  },
};

start();
