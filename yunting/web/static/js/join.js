// The participant's way into the hearing (/j/<token>): identity by one-time code, the conduct
// declaration, the device check, then the room. The join token is read from this page's
// address and only ever sent in an Authorization header.

import { t } from "./i18n.js";
import { storageGet, storageSet } from "./storage.js";
import {
  levelMeter,
  listDevices,
  loadPrefs,
  openLocalMedia,
  playTone,
  savePrefs,
  stopStream,
} from "./devices.js";

const root = document.getElementById("join");
const participantId = root.dataset.participant;
const mayPublish = root.dataset.mayPublish === "true";
const tokenMatch = location.pathname.match(/^\/j\/([^/]+)\/?$/);
const token = tokenMatch ? decodeURIComponent(tokenMatch[1]) : "";
const roomPath = `/j/${tokenMatch ? tokenMatch[1] : ""}/room`;
// The room page checks these before it lets the participant in (see room.js).
const DECLARED_KEY = `yunting.declared.${participantId}`;
const CHECKED_KEY = `yunting.devicecheck.${participantId}`;

const STEPS = ["identity", "declaration", "devices"];
const $ = (id) => document.getElementById(id);
const announcer = $("join-announcer");

function announce(text) {
  // Cleared first so that the same sentence twice is announced twice.
  announcer.textContent = "";
  window.setTimeout(() => {
    announcer.textContent = text;
  }, 50);
}

function show(step, { focus = true } = {}) {
  const current = STEPS.indexOf(step);
  for (const name of STEPS) $(`step-${name}`).hidden = name !== step;
  for (const item of $("stepper").children) {
    const index = STEPS.indexOf(item.dataset.step);
    item.classList.toggle("done", index >= 0 && index < current);
    if (item.dataset.step === step) item.setAttribute("aria-current", "step");
    else item.removeAttribute("aria-current");
  }
  if (focus) $(`${step}-heading`).focus();
  if (step === "devices") startDeviceCheck();
}

async function api(path, body) {
  let response;
  try {
    response = await fetch(path, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        Authorization: `Bearer ${token}`,
      },
      body: JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch {
    return { ok: false, status: 0, data: null, error: null, retryAfter: 0 };
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  return {
    ok: response.ok,
    status: response.status,
    data,
    error: data && data.error ? data.error : null,
    retryAfter: Number(response.headers.get("Retry-After")) || 0,
  };
}

function setBusy(button, busy) {
  button.disabled = busy;
  button.setAttribute("aria-busy", busy ? "true" : "false");
}

// 1. Identity -----------------------------------------------------------------------------------

const codeRequest = $("code-request");
const codeCheck = $("code-check");
const codeInput = $("f-code");
const codeError = $("f-code-err");
const identityError = $("identity-error");

function requestError(result) {
  if (result.status === 0) return t("verify.error_network");
  if (result.status === 429) {
    const seconds = result.retryAfter || 60;
    return seconds > 90
      ? t("verify.error_wait_minutes", { minutes: Math.ceil(seconds / 60) })
      : t("verify.error_wait_seconds", { seconds });
  }
  if (result.status === 409) return t("verify.error_no_contact");
  if (result.status === 401 || result.status === 410) return t("verify.error_link");
  return t("verify.error_generic");
}

function codeProblem(result) {
  const reason = result.error && result.error.reason;
  if (result.status !== 422 || !reason) return null;
  switch (reason) {
    case "wrong":
      return t("verify.error_wrong", { left: result.error.attempts_left });
    case "expired":
      return t("verify.error_expired");
    case "used":
      return t("verify.error_used");
    case "locked":
      return t("verify.error_locked");
    case "none":
      return t("verify.error_none");
    default:
      return t("verify.error_generic");
  }
}

function showIdentityError(text) {
  identityError.textContent = text;
  identityError.hidden = !text;
}

function showCodeError(text) {
  codeError.textContent = text;
  codeError.hidden = !text;
  $("code-field").classList.toggle("has-error", Boolean(text));
  if (text) codeInput.setAttribute("aria-invalid", "true");
  else codeInput.removeAttribute("aria-invalid");
}

if (codeRequest) {
  codeRequest.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = $("send-code");
    const chosen = codeRequest.querySelector("input[name=channel]:checked");
    setBusy(button, true);
    showIdentityError("");
    const result = await api("/api/join/code", { channel: chosen ? chosen.value : "sms" });
    setBusy(button, false);
    if (!result.ok) {
      showIdentityError(requestError(result));
      return;
    }
    const sent = $("code-sent");
    sent.textContent = t("verify.sent", { hint: result.data.destination_hint });
    codeRequest.hidden = true;
    codeCheck.hidden = false;
    showCodeError("");
    codeInput.value = "";
    codeInput.focus();
    announce(sent.textContent);
  });

  codeCheck.addEventListener("submit", async (event) => {
    event.preventDefault();
    const code = codeInput.value.trim();
    if (!code) {
      showCodeError(t("verify.error_empty"));
      codeInput.focus();
      return;
    }
    const button = codeCheck.querySelector("button[type=submit]");
    setBusy(button, true);
    showIdentityError("");
    const result = await api("/api/join/verify", { code });
    setBusy(button, false);
    if (result.ok) {
      showCodeError("");
      announce(t("verify.done"));
      show("declaration");
      return;
    }
    const problem = codeProblem(result);
    if (problem) {
      showCodeError(problem);
      codeInput.focus();
      codeInput.select();
    } else {
      showIdentityError(requestError(result));
    }
  });

  // A new code: back to the choice of channel (the person may want the other one).
  $("resend-code").addEventListener("click", () => {
    codeCheck.hidden = true;
    codeRequest.hidden = false;
    showIdentityError("");
    const first = codeRequest.querySelector("input[name=channel]:checked");
    (first || $("send-code")).focus();
  });
}

// 2. Conduct declaration ------------------------------------------------------------------------

const declareBox = $("f-declare");
const declareError = $("f-declare-err");

// The text the participant accepts; bump it when the declaration's wording changes, so the
// attendance log says which wording each person promised.
const DECLARATION_VERSION = "conduct-1";

$("declaration-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!declareBox.checked) {
    declareError.hidden = false;
    $("declaration-field").classList.add("has-error");
    declareBox.setAttribute("aria-invalid", "true");
    declareBox.focus();
    return;
  }
  // The court's record of the promise comes first: without it the person does not go on.
  const button = $("declaration-submit");
  const failure = $("declaration-error");
  failure.hidden = true;
  setBusy(button, true);
  const result = await api("/api/join/declaration", { accepted: true, version: DECLARATION_VERSION });
  setBusy(button, false);
  if (!result.ok) {
    failure.textContent =
      result.status === 409 ? t("declaration.error_verify") : requestError(result);
    failure.hidden = false;
    return;
  }
  storageSet(DECLARED_KEY, new Date().toISOString());
  show("devices");
});

declareBox.addEventListener("change", () => {
  if (declareBox.checked) {
    declareError.hidden = true;
    $("declaration-field").classList.remove("has-error");
    declareBox.removeAttribute("aria-invalid");
  }
});

// 3. Device check -------------------------------------------------------------------------------

const check = { camera: "pending", microphone: "pending", speaker: "not_tested" };
let localStream = null;
let meter = null;
let heardSomething = false;
let checking = null;

const STATUS_TEXT = {
  camera: {
    ok: "devices.camera_ok",
    denied: "devices.camera_denied",
    missing: "devices.camera_missing",
    error: "devices.camera_error",
  },
  microphone: {
    ok: "devices.microphone_ok",
    denied: "devices.microphone_denied",
    missing: "devices.microphone_missing",
    error: "devices.microphone_error",
  },
};

function setDeviceStatus(kind, status, text) {
  $(`device-${kind}`).dataset.status = status;
  $(`${kind}-status`).textContent = text;
}

function updateSummary() {
  const lines = [];
  if (check.camera !== "ok" && check.camera !== "pending") lines.push(t("devices.consequence_camera"));
  if (check.microphone !== "ok" && check.microphone !== "pending") {
    lines.push(t("devices.consequence_microphone"));
  }
  if (check.speaker === "failed") lines.push(t("devices.consequence_speaker"));
  const summary = $("devices-summary");
  summary.replaceChildren();
  summary.hidden = lines.length === 0;
  if (lines.length === 0) return;
  const heading = document.createElement("p");
  heading.textContent = t("devices.consequence_heading");
  const list = document.createElement("ul");
  for (const line of lines) {
    const item = document.createElement("li");
    item.textContent = line;
    list.append(item);
  }
  summary.append(heading, list);
}

async function fillDeviceChoices() {
  const devices = await listDevices();
  const prefs = loadPrefs();
  for (const [kind, deviceKind, selectId] of [
    ["video", "videoinput", "f-camera"],
    ["audio", "audioinput", "f-microphone"],
  ]) {
    const select = $(selectId);
    const found = devices.filter((d) => d.kind === deviceKind && d.deviceId);
    select.closest(".device-select").hidden = found.length < 2;
    select.replaceChildren();
    const track = localStream
      ? (kind === "video" ? localStream.getVideoTracks() : localStream.getAudioTracks())[0]
      : null;
    const inUse = track && track.getSettings ? track.getSettings().deviceId : prefs[kind];
    found.forEach((device, index) => {
      const option = document.createElement("option");
      option.value = device.deviceId;
      option.textContent = device.label || t("devices.unnamed", { n: index + 1 });
      option.selected = device.deviceId === inUse;
      select.append(option);
    });
    select.onchange = () => {
      savePrefs({ ...loadPrefs(), [kind]: select.value });
      startDeviceCheck();
    };
  }
}

function stopDeviceCheck() {
  if (meter) meter.stop();
  meter = null;
  stopStream(localStream);
  localStream = null;
  $("camera-preview").srcObject = null;
}

async function runDeviceCheck() {
  stopDeviceCheck();
  heardSomething = false;
  check.camera = "pending";
  check.microphone = "pending";
  $("devices-done").disabled = true;
  setDeviceStatus("camera", "pending", t("devices.checking"));
  setDeviceStatus("microphone", "pending", t("devices.checking"));
  $("mic-heard").textContent = t("devices.speak");
  $("mic-level").value = 0;
  updateSummary();

  const result = await openLocalMedia({ audio: true, video: true });
  localStream = result.stream;
  check.camera = result.video;
  check.microphone = result.audio;
  const unsupported = result.unsupported ? t("devices.unsupported") : "";
  setDeviceStatus("camera", check.camera, unsupported || t(STATUS_TEXT.camera[check.camera]));
  setDeviceStatus(
    "microphone",
    check.microphone,
    unsupported || t(STATUS_TEXT.microphone[check.microphone]),
  );
  const preview = $("camera-preview");
  const hasVideo = check.camera === "ok";
  $("camera-empty").hidden = hasVideo;
  preview.hidden = !hasVideo;
  if (hasVideo) {
    preview.srcObject = localStream;
    preview.play().catch(() => {});
  }
  if (check.microphone === "ok") {
    const level = $("mic-level");
    meter = levelMeter(localStream, (value) => {
      level.value = value;
      if (!heardSomething && value > 0.35) {
        heardSomething = true;
        $("mic-heard").textContent = t("devices.heard_you");
        $("device-microphone").dataset.heard = "true";
      }
    });
  } else {
    $("mic-heard").textContent = "";
  }
  await fillDeviceChoices();
  updateSummary();
  $("devices-done").disabled = false;
  announce(
    check.camera === "ok" && check.microphone === "ok"
      ? t("devices.all_ok")
      : t("devices.some_problems"),
  );
}

function startDeviceCheck() {
  if (!mayPublish) {
    // Observers never publish: no camera or microphone is asked for, only the speaker matters.
    for (const kind of ["camera", "microphone"]) $(`device-${kind}`).hidden = true;
    $("camera-preview").closest(".device-preview").hidden = true;
    $("devices-retry").hidden = true;
    return;
  }
  checking = runDeviceCheck();
}

$("devices-retry").addEventListener("click", () => startDeviceCheck());

$("play-tone").addEventListener("click", async () => {
  const button = $("play-tone");
  setBusy(button, true);
  setDeviceStatus("speaker", "pending", t("devices.playing"));
  try {
    await playTone();
    setDeviceStatus("speaker", "pending", t("devices.did_you_hear"));
    $("speaker-answer").hidden = false;
    $("heard-yes").focus();
  } catch {
    check.speaker = "failed";
    setDeviceStatus("speaker", "failed", t("devices.speaker_error"));
    updateSummary();
  } finally {
    setBusy(button, false);
  }
});

function answerSpeaker(heard) {
  check.speaker = heard ? "ok" : "failed";
  setDeviceStatus("speaker", check.speaker, t(heard ? "devices.speaker_ok" : "devices.speaker_failed"));
  $("speaker-answer").hidden = true;
  updateSummary();
  $("play-tone").focus();
}

$("heard-yes").addEventListener("click", () => answerSpeaker(true));
$("heard-no").addEventListener("click", () => answerSpeaker(false));

$("devices-done").addEventListener("click", async () => {
  const button = $("devices-done");
  const error = $("devices-error");
  error.hidden = true;
  if (checking) await checking;
  setBusy(button, true);
  if (mayPublish) {
    const result = await api("/api/join/device-check", {
      camera: check.camera === "pending" ? "error" : check.camera,
      microphone: check.microphone === "pending" ? "error" : check.microphone,
      speaker: check.speaker,
    });
    if (!result.ok) {
      setBusy(button, false);
      error.textContent =
        result.status === 409 ? t("devices.error_verify") : requestError(result);
      error.hidden = false;
      return;
    }
  }
  storageSet(CHECKED_KEY, new Date().toISOString());
  // The room opens the camera again; let go of it first so it is not "in use".
  stopDeviceCheck();
  location.assign(roomPath);
});

// Start where this participant is: verified people skip the code, declared ones the declaration.
if (root.dataset.verified !== "true") show("identity", { focus: false });
else if (!storageGet(DECLARED_KEY)) show("declaration", { focus: false });
else show("devices", { focus: false });
