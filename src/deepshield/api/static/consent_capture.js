// Consent capture page: starts the consent request's liveness session with the capture token (URL fragment,
// never sent in a URL), shows the sentence to read aloud, then runs the liveness capture script with sound and
// the consent upload. After the upload it shows the reference and PIN that withdraw the consent.
(function () {
  "use strict";
  const requestId = document.currentScript.dataset.request;
  const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
  const $ = (id) => document.getElementById(id);
  function fail(text) { const s = $("status"); s.textContent = text; s.className = "error"; }
  document.addEventListener("consent-received", (e) => {
    $("reference").textContent = e.detail.reference;
    $("pin").textContent = e.detail.pin;
    $("withdraw").hidden = false;
  });
  async function begin() {
    if (!token) { fail("This link is incomplete: open the full link you were sent."); return; }
    const r = await fetch(`/v1/consents/${encodeURIComponent(requestId)}/capture`, {
      method: "POST", headers: { "X-Consent-Token": token }, cache: "no-store" });
    if (!r.ok) { fail("This consent link is not valid, was already used, or has expired."); return; }
    const body = await r.json();
    $("sentence").textContent = body.sentence;
    const s = document.createElement("script");
    s.src = "/static/liveness_capture.js";
    s.dataset.session = body.liveness_session_id;
    s.dataset.token = body.liveness_token;
    s.dataset.audio = "1";
    s.dataset.upload = `/v1/consents/${encodeURIComponent(requestId)}/video`;
    s.dataset.consentToken = token;
    document.body.appendChild(s);
  }
  begin().catch(() => fail("This consent page could not be loaded."));
})();
