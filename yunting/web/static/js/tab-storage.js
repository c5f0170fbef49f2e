// This tab's session storage, which a browser may refuse (private mode, storage disabled).
// Without it nothing breaks: the room asks for the device check again and a reload cannot
// resume, but a reconnect inside the page still does.

/** The stored string for `key`, or null when absent or when storage is unavailable. */
export function storageGet(key) {
  try {
    return sessionStorage.getItem(key);
  } catch {
    return null;
  }
}

/** Store `value` under `key` if the browser allows it. */
export function storageSet(key, value) {
  try {
    sessionStorage.setItem(key, value);
  } catch {
    // See the note at the top of this module.
  }
}
