// The page's translated strings: the server puts the ones a script needs in #yt-strings
// (a JSON data block, not a script, so the content security policy has nothing to object to).

const element = document.getElementById("yt-strings");
const strings = element ? JSON.parse(element.textContent || "{}") : {};

/** The string for `key` with `{name}` placeholders filled in; the key itself if unknown. */
export function t(key, params) {
  const text = strings[key];
  if (text === undefined) return key;
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name) =>
    Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : whole,
  );
}

/** The label of an enum value (`role.judge`, `state.open`), else the raw value. */
export function label(prefix, value) {
  const text = strings[`${prefix}.${value}`];
  return text === undefined ? String(value) : text;
}

/** Whether a string exists (for optional, more specific messages). */
export function has(key) {
  return strings[key] !== undefined;
}
