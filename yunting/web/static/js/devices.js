// Camera, microphone and speaker: shared by the device check (join.js) and the room (room.js).

import { storageGet, storageSet } from "./storage.js";

const PREFS_KEY = "yunting.devices";

/** What went wrong with a device, as the attendance log records it. */
export function classifyError(error) {
  const name = error && error.name;
  // NotAllowedError: the person (or a browser policy) refused; SecurityError: an insecure page.
  if (name === "NotAllowedError" || name === "SecurityError" || name === "PermissionDeniedError") {
    return "denied";
  }
  if (name === "NotFoundError" || name === "DevicesNotFoundError" || name === "OverconstrainedError") {
    return "missing";
  }
  // NotReadableError (device busy in another program), AbortError, TypeError, ...
  return "error";
}

/** The devices chosen in the device check, remembered for this tab. */
export function loadPrefs() {
  try {
    return JSON.parse(storageGet(PREFS_KEY) || "{}") || {};
  } catch {
    return {}; // not JSON: forget it
  }
}

export function savePrefs(prefs) {
  storageSet(PREFS_KEY, JSON.stringify(prefs));
}

function constraints(kind, prefs) {
  const id = prefs[kind];
  const base =
    kind === "video"
      ? { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 20 } }
      : { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
  return id ? { ...base, deviceId: { ideal: id } } : base;
}

/**
 * Open the camera and microphone. Resolves (never rejects) with the stream holding whatever
 * worked and, per kind, "ok" | "denied" | "missing" | "error" | "off" (not asked for).
 */
export async function openLocalMedia({ audio = true, video = true, prefs = loadPrefs() } = {}) {
  const result = {
    stream: new MediaStream(),
    audio: audio ? "error" : "off",
    video: video ? "error" : "off",
    unsupported: false,
  };
  const wanted = [audio && "audio", video && "video"].filter(Boolean);
  if (wanted.length === 0) return result;
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    // Old browser, or a page not served over https: no camera or microphone at all.
    result.unsupported = true;
    return result;
  }
  const ask = {};
  for (const kind of wanted) ask[kind] = constraints(kind, prefs);
  try {
    const stream = await navigator.mediaDevices.getUserMedia(ask);
    for (const track of stream.getTracks()) result.stream.addTrack(track);
    for (const kind of wanted) result[kind] = "ok";
    return result;
  } catch (error) {
    if (wanted.length === 1) {
      result[wanted[0]] = classifyError(error);
      return result;
    }
  }
  // Both together failed: ask for each alone, to keep the one that works and to say exactly
  // which one did not (a laptop without a camera can still take part by audio).
  for (const kind of wanted) {
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ [kind]: constraints(kind, prefs) });
      for (const track of stream.getTracks()) result.stream.addTrack(track);
      result[kind] = "ok";
    } catch (error) {
      result[kind] = classifyError(error);
    }
  }
  return result;
}

export function stopStream(stream) {
  if (stream) for (const track of stream.getTracks()) track.stop();
}

/** Cameras and microphones (labels are known once permission was given). */
export async function listDevices() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return [];
  try {
    return await navigator.mediaDevices.enumerateDevices();
  } catch {
    return [];
  }
}

function audioContext() {
  const Context = window.AudioContext || window.webkitAudioContext;
  return Context ? new Context() : null;
}

/**
 * Call `onLevel(0..1)` about 60 times a second with the loudness of the stream's microphone.
 * Returns an object with stop().
 */
export function levelMeter(stream, onLevel) {
  const context = audioContext();
  if (!context || stream.getAudioTracks().length === 0) return { stop() {} };
  // A context made after a click may still start suspended; it does no harm to ask.
  context.resume().catch(() => {});
  const source = context.createMediaStreamSource(stream);
  const analyser = context.createAnalyser();
  analyser.fftSize = 1024;
  source.connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  let frame = 0;
  const tick = () => {
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const v of samples) sum += v * v;
    const rms = Math.sqrt(sum / samples.length);
    // Speech sits around -30 dBFS RMS: map -60..0 dBFS onto 0..1.
    const db = 20 * Math.log10(rms || 1e-8);
    onLevel(Math.max(0, Math.min(1, (db + 60) / 60)));
    frame = requestAnimationFrame(tick);
  };
  tick();
  return {
    stop() {
      cancelAnimationFrame(frame);
      source.disconnect();
      context.close().catch(() => {});
    },
  };
}

/** Play a short, quiet two-note chime on the default output; resolves when it has finished. */
export async function playTone() {
  const context = audioContext();
  if (!context) throw new Error("no Web Audio");
  await context.resume();
  const start = context.currentTime + 0.05;
  const notes = [
    [523.25, 0],
    [659.25, 0.45],
  ];
  let last = null;
  for (const [frequency, offset] of notes) {
    const oscillator = context.createOscillator();
    const gain = context.createGain();
    oscillator.type = "sine";
    oscillator.frequency.value = frequency;
    const at = start + offset;
    // Soft attack and release: no clicks, nothing startling.
    gain.gain.setValueAtTime(0, at);
    gain.gain.linearRampToValueAtTime(0.2, at + 0.04);
    gain.gain.setValueAtTime(0.2, at + 0.5);
    gain.gain.linearRampToValueAtTime(0, at + 0.7);
    oscillator.connect(gain).connect(context.destination);
    oscillator.start(at);
    oscillator.stop(at + 0.75);
    last = oscillator;
  }
  await new Promise((resolve) => {
    last.onended = resolve;
  });
  await context.close();
}
