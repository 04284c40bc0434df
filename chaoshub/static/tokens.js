// The tokens page: a purpose ticks its scopes, a ticked box makes the purpose custom, and the
// new secret gets a copy button. Without this script the form still works: the server expands
// the purpose submitted.
(function () {
  "use strict";
  var form = document.querySelector("form[action='/settings/tokens']");
  if (form) {
    var boxes = form.querySelectorAll("input[name='scopes']");
    var custom = form.querySelector("input[name='preset'][value='custom']");
    form.querySelectorAll("input[name='preset'][data-scopes]").forEach(function (radio) {
      radio.addEventListener("change", function () {
        var wanted = radio.dataset.scopes.split(" ");
        boxes.forEach(function (box) { box.checked = wanted.indexOf(box.value) !== -1; });
      });
    });
    boxes.forEach(function (box) {
      box.addEventListener("change", function () { if (custom) { custom.checked = true; } });
    });
  }

  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var field = document.getElementById(button.dataset.copy);
    var status = button.parentElement.querySelector(".copied");
    button.hidden = false;
    button.addEventListener("click", function () {
      function done(copied) {
        status.textContent = copied ? "Copied" : "Select the token and copy it";
        status.classList.toggle("failed", !copied);
      }
      function byCommand() {
        // Where the asynchronous clipboard is refused (some browsers over plain http).
        field.focus();
        field.select();
        try { done(document.execCommand("copy")); } catch (e) { done(false); }
      }
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(function () { done(true); }, byCommand);
      } else {
        byCommand();
      }
    });
  });
}());
