// The on-device hashing page's logic (a file of its own: the service's CSP runs no inline script).
(function () {
  "use strict";
  var results = [];            // {name, hash, quality} only: no pixels are kept
  window.__deepshieldResults = results;
  var params = new URLSearchParams(location.search);
  // Two ways to send: a victim with the case number and PIN (no account, /v1/selfservice/hashes), or signed-in
  // staff into a named bank (?bank=NAME, /v1/match/device-hashes with the session's CSRF token).
  var bank = params.get("bank") || "";
  var caseRef = params.get("case") || "";
  var staff = bank !== "";
  document.getElementById("victim-fields").hidden = staff;
  document.getElementById("staff-fields").hidden = !staff;
  document.getElementById("case").value = caseRef;
  document.getElementById("bank-name").textContent = bank;
  document.getElementById("staff-case").textContent = caseRef || "none";
  var back = document.getElementById("back");
  if (staff) { back.href = "/console"; back.textContent = "← Back to the review console"; }
  else if (/^[A-Za-z0-9-]{1,20}$/.test(caseRef)) back.href = "/case-status/" + encodeURIComponent(caseRef.toUpperCase());
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

  function plain(d) {
    return Array.isArray(d) ? d.map(function (x) { return x.msg || String(x); }).join("; ") : String(d);
  }

  function report(out, ok, j) {
    out.className = ok ? "ok" : "err";
    out.textContent = ok ? ("Sent " + j.added + " new fingerprint(s)" + (staff ? "." : " to case " + j.case_id + "."))
                         : ("Not sent: " + plain(j.detail || j.message || j.error || "the service refused"));
  }

  function sendAsVictim(hashes) {
    var caseId = document.getElementById("case").value.trim().toUpperCase();
    var pin = document.getElementById("pin").value.trim();
    if (!caseId || !pin) return Promise.resolve([false, { detail: "enter the case number and PIN from your receipt" }]);
    var body = { case_id: caseId, pin: pin,
                 hashes: hashes.map(function (r) { return { signal: "pdq", value: r.hash }; }) };
    return fetch("/v1/selfservice/hashes", { method: "POST", credentials: "omit", body: JSON.stringify(body),
                                              headers: { "Content-Type": "application/json" } })
      .then(function (resp) { return resp.json().then(function (j) { return [resp.ok, j]; }); });
  }

  function sendAsStaff(hashes) {
    var body = { bank: bank, case_id: caseRef,
                 hashes: hashes.map(function (r) { return { pdq: r.hash, quality: r.quality }; }) };
    // Signed in with the console's cookie, the API wants the session's CSRF token with a POST.
    return fetch("/account/csrf", { credentials: "same-origin", cache: "no-store" })
      .then(function (resp) { return resp.json(); })
      .then(function (j) {
        return fetch(submitUrl, { method: "POST", credentials: "same-origin", body: JSON.stringify(body),
                                  headers: { "Content-Type": "application/json", "X-CSRF-Token": j.csrf_token } });
      })
      .then(function (resp) { return resp.json().then(function (j) { return [resp.ok, j]; }); });
  }

  var submitUrl = "/v1/match/device-hashes";
  document.getElementById("send").addEventListener("click", function () {
    var hashes = results.filter(function (r) { return r.hash; });
    var out = document.getElementById("sent");
    out.className = ""; out.textContent = "Sending…";
    (staff ? sendAsStaff(hashes) : sendAsVictim(hashes))
      .then(function (r) { report(out, r[0], r[1]); },
            function (e) { out.className = "err"; out.textContent = "Not sent: " + e; });
  });
})();
