// The experiment editor: line numbers beside the text, and the hub's own check of the
// document as it is typed (debounced), each problem shown at its line.
(function () {
  "use strict";
  var text = document.querySelector("textarea[data-validate-url]");
  if (!text) return;
  var form = text.form;
  var format = form.querySelector("select[name=format]");
  var gutter = document.querySelector(".editor-gutter");
  var list = document.querySelector("[data-testid=problems]");
  var status = document.getElementById("problems-status");
  var DELAY = 400;
  var timer = null;
  var asked = 0;  // answers to older questions are dropped: only the latest text counts
  var badLines = {};

  function serverProblems() {
    var found = {};
    list.querySelectorAll("li[data-line]").forEach(function (item) {
      if (item.dataset.line) found[item.dataset.line] = true;
    });
    return found;
  }

  function drawGutter() {
    var count = text.value.split("\n").length;
    var lines = [];
    for (var i = 1; i <= count; i++) {
      lines.push(badLines[i] ? "<span class=\"bad\">" + i + "</span>" : String(i));
    }
    gutter.innerHTML = lines.join("\n");
    gutter.scrollTop = text.scrollTop;
  }

  function lineHeight() {
    return parseFloat(getComputedStyle(text).lineHeight) || 18;
  }

  function goToLine(line) {
    var starts = [0];
    for (var i = 0; i < text.value.length; i++) {
      if (text.value[i] === "\n") starts.push(i + 1);
    }
    var start = starts[line - 1] || 0;
    var end = line < starts.length ? starts[line] - 1 : text.value.length;
    text.focus();
    text.setSelectionRange(start, end);
    text.scrollTop = Math.max(0, (line - 3) * lineHeight());
  }

  function show(problems) {
    list.textContent = "";
    badLines = {};
    problems.forEach(function (problem) {
      var item = document.createElement("li");
      item.setAttribute("data-testid", "problem");
      item.dataset.line = problem.line || "";
      var where = document.createElement(problem.line ? "button" : "span");
      where.className = problem.line ? "problem-line link-like" : "problem-line";
      where.textContent = problem.line ? "Line " + problem.line : "Document";
      if (problem.line) {
        where.type = "button";
        where.title = "Go to line " + problem.line;
        where.addEventListener("click", function () { goToLine(problem.line); });
        badLines[problem.line] = true;
      }
      item.appendChild(where);
      item.appendChild(document.createTextNode(" " + problem.message));
      if (problem.pointer) {
        var pointer = document.createElement("code");
        pointer.className = "muted";
        pointer.textContent = problem.pointer;
        item.appendChild(document.createTextNode(" "));
        item.appendChild(pointer);
      }
      list.appendChild(item);
    });
    text.setAttribute("aria-invalid", problems.length ? "true" : "false");
    drawGutter();
  }

  function check() {
    var mine = ++asked;
    if (!text.value.trim()) {
      show([]);
      status.textContent = "";
      return;
    }
    status.textContent = "Checking…";
    fetch(text.dataset.validateUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json",
                "X-CSRF-Token": text.dataset.csrf},
      body: JSON.stringify({document: text.value, format: format.value})
    }).then(function (response) {
      return response.json().then(function (body) { return {ok: response.ok, body: body}; });
    }).then(function (answer) {
      if (mine !== asked) return;
      if (!answer.ok) {
        status.textContent = "Could not check the document: " + (answer.body.message || "refused");
        return;
      }
      show(answer.body.problems);
      var count = answer.body.problems.length;
      status.textContent = count ? count + (count === 1 ? " problem" : " problems") +
        ": the hub would not keep this document." : "Valid: the hub would keep this document.";
    }).catch(function () {
      if (mine === asked) status.textContent = "Could not check the document: the hub did not answer.";
    });
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(check, DELAY);
  }

  text.addEventListener("input", function () { drawGutter(); later(); });
  text.addEventListener("scroll", function () { gutter.scrollTop = text.scrollTop; });
  format.addEventListener("change", check);
  list.querySelectorAll("li[data-line]").forEach(function (item) {
    var line = parseInt(item.dataset.line, 10);
    if (line) {
      item.querySelector(".problem-line").addEventListener("click", function () { goToLine(line); });
    }
  });
  badLines = serverProblems();
  drawGutter();
  // A page shown with the server's problems already lists them; otherwise say where it stands.
  if (!list.children.length && text.value.trim()) check();
})();
