// Fill in the viewer's own time zone where a form asks for one (it still says UTC), and offer
// the upcoming runs page in it.
(function () {
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!zone) { return; }
  document.querySelectorAll("input[data-local-zone]").forEach(function (input) {
    if (input.value === "UTC" && !input.hasAttribute("data-sent")) { input.value = zone; }
  });
  document.querySelectorAll("a[data-local-zone-link]").forEach(function (link) {
    if (link.getAttribute("data-shown-zone") === zone) { return; }
    link.href = link.getAttribute("data-local-zone-link") + "?tz=" + encodeURIComponent(zone);
    link.textContent = "Show them in your time zone (" + zone + ")";
    link.hidden = false;
  });
})();
