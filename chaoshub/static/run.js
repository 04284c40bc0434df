// The run page, live: follows the run's server-sent events (GET /api/v1/runs/{id}/events) and
// extends the timeline the server drew, the same way chaoshub/experiment/run_timeline.py does.
(function () {
  "use strict";
  var root = document.getElementById("live-run");
  if (!root || root.dataset.active !== "yes" || !window.EventSource) {
    return;
  }
  var TITLES = {
    before: "Steady state before the method",
    method: "Method",
    after: "Steady state after the method",
    rollbacks: "Rollbacks"
  };
  var LABELS = {
    queued: "Queued", running: "Running", finished: "Finished", aborted: "Aborted",
    interrupted: "Interrupted", refused: "Refused"
  };
  var OUTPUT_SHOWN = 2000;
  var timeline = document.getElementById("run-timeline");
  var phases = timeline ? timeline.querySelectorAll(".phase") : [];
  var current = phases.length ? phases[phases.length - 1] : null;

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  function seconds(value) {
    if (typeof value !== "number") { return ""; }
    return value < 1 ? (value * 1000).toFixed(1) + " ms" : value.toFixed(2) + " s";
  }

  function outputText(event) {
    if (event.output_truncated) {
      return "(output of " + (event.output_size || "?") + " bytes: see the journal)";
    }
    if (event.output === undefined || event.output === null) { return ""; }
    var text = typeof event.output === "string" ? event.output
      : JSON.stringify(event.output, null, 2);
    return text.length <= OUTPUT_SHOWN ? text : text.slice(0, OUTPUT_SHOWN) + " …";
  }

  function verdict(met) {
    var badge = element("span", "badge verdict " + (met === true ? "met" : met === false ? "missed" : "pending"),
      met === true ? "met" : met === false ? "not met" : "checking…");
    badge.dataset.testid = "steady-verdict";
    return badge;
  }

  function phase(key) {
    var block = element("div", "phase");
    block.dataset.testid = "phase-" + key;
    block.dataset.key = key;
    var heading = element("h3", null, TITLES[key]);
    if (key === "before" || key === "after") {
      heading.appendChild(document.createTextNode(" "));
      heading.appendChild(verdict(null));
    }
    block.appendChild(heading);
    block.appendChild(element("ol", "timeline"));
    timeline.insertBefore(block, document.getElementById("run-ending"));
    document.getElementById("timeline-empty").hidden = true;
    current = block;
    return block;
  }

  function entry(event) {
    var item = element("li", "run running");
    item.dataset.testid = "run-entry";
    item.dataset.name = event.name || "unnamed";
    var head = element("div", "activity-head");
    var status = element("span", "badge status running", "running");
    status.dataset.testid = "entry-status";
    head.appendChild(status);
    if (event.activity_type) {
      head.appendChild(document.createTextNode(" "));
      head.appendChild(element("span", "badge kind " + event.activity_type, event.activity_type));
    }
    head.appendChild(document.createTextNode(" "));
    var name = element("strong", null, event.name || "unnamed");
    name.dataset.testid = "activity-name";
    head.appendChild(name);
    head.appendChild(document.createTextNode(" "));
    var duration = element("span", "push muted", "running…");
    duration.dataset.testid = "entry-duration";
    head.appendChild(duration);
    item.appendChild(head);
    return item;
  }

  function completed(item, event) {
    var status = String(event.status || "completed");
    item.className = "run " + status;
    var badge = item.querySelector("[data-testid=entry-status]");
    badge.className = "badge status " + status;
    badge.textContent = status;
    item.querySelector("[data-testid=entry-duration]").textContent = seconds(event.duration);
    var output = outputText(event);
    if (output) {
      var pre = element("pre", "output", output);
      pre.dataset.testid = "output";
      item.appendChild(pre);
    }
    var error = event.exception || event.error;
    if (error) {
      var failure = element("pre", "output error", Array.isArray(error) ? error.join("") : String(error));
      failure.dataset.testid = "error";
      item.appendChild(failure);
    }
  }

  function activity(event) {
    var block = current || phase("method");
    var list = block.querySelector("ol");
    var name = event.name || "unnamed";
    if (event.type === "activity-started") {
      list.appendChild(entry(event));
      return;
    }
    var items = list.querySelectorAll("[data-testid=run-entry]");
    var found = null;
    for (var i = items.length - 1; i >= 0; i--) {
      if (items[i].dataset.name === name && items[i].classList.contains("running")) {
        found = items[i];
        break;
      }
    }
    if (!found) {
      found = entry(event);
      list.appendChild(found);
    }
    completed(found, event);
  }

  function ending(event) {
    var note = document.getElementById("run-ending");
    if (!note) { return; }
    if (event.type === "run-finished") {
      note.textContent = "The run completed" + (event.deviated ? ", deviated" : "") + ".";
    } else {
      var reason = event.reason || event.error || event.signal;
      note.textContent = "The run was interrupted" + (reason ? ": " + reason : "") + ".";
    }
    note.hidden = false;
  }

  function onEvent(message) {
    var event = JSON.parse(message.data);
    if (!timeline) { return; }
    switch (event.type) {
      case "hypothesis-started":
        phase(event.phase === "after" ? "after" : "before");
        break;
      case "hypothesis-completed":
        if (current) {
          var old = current.querySelector("[data-testid=steady-verdict]");
          if (old) { old.replaceWith(verdict(event.met)); }
        }
        break;
      case "method-started":
        phase("method");
        break;
      case "rollbacks-started":
        phase("rollbacks");
        break;
      case "activity-started":
      case "activity-completed":
        activity(event);
        break;
      case "run-finished":
      case "run-interrupted":
      case "run-signal-exit":
        ending(event);
        break;
    }
  }

  function onStatus(message) {
    var status = JSON.parse(message.data);
    var label = LABELS[status.status] || status.status;
    var badge = document.getElementById("run-status");
    badge.textContent = label;
    badge.className = "badge run-status " + status.status;
    document.getElementById("fact-status").textContent = label;
    var reason = document.getElementById("run-reason");
    reason.textContent = status.reason || "";
    reason.hidden = !status.reason;
    if (status.execution_url) {
      var link = document.getElementById("execution-link");
      link.querySelector("a").href = status.execution_url;
      link.hidden = false;
    }
    if (status.ended) {
      source.close();
      var abort = document.getElementById("abort");
      if (abort) { abort.hidden = true; }
      var refresh = document.getElementById("refresh");
      if (refresh) { refresh.hidden = true; }
      root.dataset.active = "no";
    }
  }

  var url = root.dataset.eventsUrl + "?after=" + encodeURIComponent(root.dataset.lastSeq || "0");
  var source = new EventSource(url);
  source.addEventListener("status", onStatus);
  ["run-started", "hypothesis-started", "hypothesis-completed", "method-started",
    "method-completed", "activity-started", "activity-completed", "rollbacks-started",
    "rollbacks-completed", "run-interrupted", "run-signal-exit", "run-finished"
  ].forEach(function (type) { source.addEventListener(type, onEvent); });
})();
