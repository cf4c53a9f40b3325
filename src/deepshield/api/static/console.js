// Console keyboard shortcuts (listed on each page) and the media view controls.
(function () {
  function typing(e) {
    var t = e.target;
    return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  }
  function submit(id) { var f = document.getElementById(id); if (f) { f.submit(); } }
  var rows = Array.prototype.slice.call(document.querySelectorAll("#queue tr[data-case]"));
  var cur = -1;
  function select(i) {
    if (!rows.length) { return; }
    cur = Math.max(0, Math.min(rows.length - 1, i));
    rows.forEach(function (r, k) { r.classList.toggle("selected", k === cur); });
    rows[cur].scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e)) { return; }
    var k = e.key;
    if (k === "j") { select(cur + 1); }
    else if (k === "k") { select(cur - 1); }
    else if ((k === "o" || k === "Enter") && cur >= 0 && rows.length) {
      window.location.href = rows[cur].querySelector("a").href;
    }
    else if (k === "n") { submit("next-form"); }
    else if (k === "c") { submit("claim-form"); }
    else if (k === "d") {
      var first = document.querySelector("#decide-form input[type=checkbox], #appeal-form input[type=radio]");
      if (first) { first.focus(); first.scrollIntoView({ block: "center" }); }
    }
    else if (k === "/") {
      var q = document.getElementById("q");
      if (q) { q.focus(); }
    }
    else if (k === "u") { window.location.href = "/console"; }
    else { return; }
    e.preventDefault();
  });
  // Media view: greyscale and soft blur, remembered on this device for the next case.
  function apply() {
    var grey = localStorage.getItem("ds-grey") === "1";
    var soft = localStorage.getItem("ds-soft") === "1";
    document.querySelectorAll(".preview.revealed").forEach(function (m) {
      m.classList.toggle("view-grey", grey);
      m.classList.toggle("view-soft", soft);
    });
    document.querySelectorAll("[data-view]").forEach(function (b) {
      var on = b.getAttribute("data-view") === "grey" ? grey : soft;
      b.setAttribute("aria-pressed", on ? "true" : "false");
    });
  }
  document.querySelectorAll("[data-view]").forEach(function (b) {
    b.addEventListener("click", function () {
      var key = "ds-" + b.getAttribute("data-view");
      localStorage.setItem(key, localStorage.getItem(key) === "1" ? "0" : "1");
      apply();
    });
  });
  apply();
})();
