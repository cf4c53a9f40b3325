// The on-device hashing page's logic (a file of its own: the service's CSP runs no inline script).
(function () {
  "use strict";
  var results = [];            // {name, hash, quality} only: no pixels are kept
  window.__deepshieldResults = results;
  var params = new URLSearchParams(location.search);
  var submitUrl = params.get("submit") || "/v1/match/device-hashes";
  document.getElementById("bank").value = params.get("bank") || "";
  document.getElementById("case").value = params.get("case") || "";
  var status = document.getElementById("status");
  var tbody = document.querySelector("#results tbody");

  document.getElementById("photos").addEventListener("change", function (ev) {
    var files = Array.prototype.slice.call(ev.target.files);
    results.length = 0;
    tbody.textContent = "";
    window.__deepshieldDone = false;
    var i = 0;
    function next() {
      if (i >= files.length) {
        status.textContent = "Done: " + results.length + " photo(s) fingerprinted on this device.";
        document.getElementById("send").disabled = results.length === 0;
        window.__deepshieldDone = true;
        return;
      }
      var f = files[i++];
      status.textContent = "Fingerprinting " + i + " of " + files.length + "…";
      DeepshieldPDQ.hashBlob(f).then(function (r) {
        results.push({ name: f.name, hash: r.hash, quality: r.quality });
        var tr = document.createElement("tr");
        var low = r.quality < 50;
        [f.name, r.hash, r.quality + (low ? " (too flat to match reliably)" : "")].forEach(function (t, k) {
          var td = document.createElement("td");
          if (k === 1) { var c = document.createElement("code"); c.textContent = t; td.appendChild(c); }
          else td.textContent = t;
          if (k === 2 && low) td.className = "warn";
          tr.appendChild(td);
        });
        tbody.appendChild(tr);
      }, function (e) {
        results.push({ name: f.name, error: String(e) });
        var tr = document.createElement("tr");
        tr.innerHTML = "<td></td><td class='err'>could not read this file as an image</td><td></td>";
        tr.firstChild.textContent = f.name;
        tbody.appendChild(tr);
      }).then(function () { setTimeout(next, 0); });
    }
    next();
  });

  document.getElementById("send").addEventListener("click", function () {
    var body = {
      bank: document.getElementById("bank").value,
      case_id: document.getElementById("case").value,
      hashes: results.filter(function (r) { return r.hash; })
                     .map(function (r) { return { pdq: r.hash, quality: r.quality }; })
    };
    var out = document.getElementById("sent");
    // Signed in with the console's cookie, the API wants the session's CSRF token with a POST.
    fetch("/account/csrf", { credentials: "same-origin", cache: "no-store" })
      .then(function (resp) { return resp.json(); })
      .then(function (j) {
        return fetch(submitUrl, { method: "POST", credentials: "same-origin", body: JSON.stringify(body),
                                  headers: { "Content-Type": "application/json", "X-CSRF-Token": j.csrf_token } });
      })
      .then(function (resp) { return resp.json().then(function (j) { return [resp.ok, j]; }); })
      .then(function (r) {
        out.className = r[0] ? "ok" : "err";
        out.textContent = r[0] ? ("Sent " + r[1].added + " fingerprint(s).") : ("Not sent: " + (r[1].detail || r[1].error));
      }, function (e) { out.className = "err"; out.textContent = "Not sent: " + e; });
  });
})();
