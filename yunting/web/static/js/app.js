// Yunting pages: small progressive enhancements. Every form works without this file.
(function () {
  "use strict";

  // Ask before actions that end or abort something (close, cancel, revoke links).
  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target.closest("[data-confirm]") : null;
    if (target && !window.confirm(target.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });

  // Copy a join link to the clipboard; fall back to selecting it for Ctrl+C.
  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element ? event.target.closest("[data-copy]") : null;
    if (!button) return;
    var input = document.querySelector(button.getAttribute("data-copy"));
    if (!input) return;
    var done = function () {
      var label = button.getAttribute("data-copied");
      if (label) {
        button.setAttribute("aria-live", "polite");
        button.lastChild.textContent = label;
      }
    };
    input.focus();
    input.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(done, function () {});
    } else if (document.execCommand && document.execCommand("copy")) {
      done();
    }
  });

  document.querySelectorAll("[data-select-on-focus]").forEach(function (input) {
    input.addEventListener("focus", function () { input.select(); });
  });

  // Add participant: the new-person fields matter only when no existing party is chosen.
  document.querySelectorAll("[data-participant-form]").forEach(function (form) {
    var existing = form.querySelector("select[name=existing]");
    var fields = form.querySelector("[data-new-person]");
    if (!existing || !fields) return;
    var sync = function () { fields.hidden = existing.value !== ""; };
    existing.addEventListener("change", sync);
    sync();
  });
})();
