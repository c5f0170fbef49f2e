// What this browser remembers for the join flow and the room: the conduct declaration and the
// device check (per participant), the chosen devices, and the room's resume token.
//
// localStorage, not sessionStorage: a party whose tab closes (by mistake, a crash, a phone
// swapping the page out) and who opens the link again inside the grace period must resume
// their place without waiting in the lobby again, and a new tab starts with empty session
// storage. The resume token is only good for the grace period and only with the join token.
//
// A browser may refuse storage (private mode, storage disabled). Nothing breaks then: the
// room asks for the declaration and device check again and a reopened page cannot resume,
// but a reconnect inside the page still does.

/** The stored string for `key`, or null when absent or when storage is unavailable. */
export function storageGet(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

/** Store `value` under `key` if the browser allows it. */
export function storageSet(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    // See the note at the top of this module.
  }
}
