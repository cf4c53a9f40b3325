// Capture page for a liveness session: camera, timed instructions, full-screen colour flashes, MediaRecorder,
// one upload. The page never sees a score, a decision or a step before it is due: it starts the session (the
// first step and the flashes), then fetches each next step with the nonce the previous answer gave, at its
// due time on the server's clock (asked early, the server answers 425 and the page asks again).
(function () {
  "use strict";
  // The session id comes in the script tag's data-session (the CSP runs no inline script to set a global).
  // The consent page loads this script with data-token (the liveness token it was given), data-audio="1" (the
  // sentence is read aloud) and data-upload / data-consent-token (the recording goes to the consent request).
  const cfg = document.currentScript.dataset;
  const sessionId = cfg.session;
  const token = cfg.token || new URLSearchParams(location.hash.slice(1)).get("token") || "";
  const withAudio = cfg.audio === "1";
  const uploadUrl = cfg.upload || `/v1/liveness/sessions/${encodeURIComponent(sessionId)}/video`;
  const $ = (id) => document.getElementById(id);
  const startBtn = $("start"), instruction = $("instruction"), statusEl = $("status");
  const flash = $("flash"), flashText = $("flash-text"), preview = $("preview");
  const api = `/v1/liveness/sessions/${encodeURIComponent(sessionId)}`;
  const headers = { "X-Liveness-Token": token };

  function setStatus(text, isError) {
    statusEl.textContent = text;
    statusEl.className = isError ? "error" : "";
  }

  function pickMime() {
    const types = withAudio
      ? ["video/webm;codecs=vp8,opus", "video/webm", "video/mp4"]
      : ["video/webm;codecs=vp8", "video/webm;codecs=vp9", "video/webm", "video/mp4;codecs=avc1", "video/mp4"];
    if (!window.MediaRecorder) return null;
    for (const t of types) { if (MediaRecorder.isTypeSupported(t)) return t; }
    return "";
  }

  async function loadScript() {
    if (!token) { setStatus("This link is incomplete: open the full link you were sent.", true); return; }
    const r = await fetch(`${api}/capture`, { headers, cache: "no-store" });
    if (!r.ok) { setStatus("This video check link is not valid or has expired.", true); return; }
    const body = await r.json();
    if (body.status !== "open" || body.started) { setStatus("This video check has already been used or has expired.", true); return; }
    startBtn.disabled = false;
    setStatus("Ready. Press the button when you are ready.");
  }

  function showStep(s) {
    steps.push(s);
    const li = document.createElement("li"); li.textContent = s.instruction; $("steps").appendChild(li);
  }

  const steps = [];
  let flashes = [], next = null, fetching = false, failed = false;

  async function fetchNext() {
    fetching = true;
    try {
      const r = await fetch(`${api}/steps/${next.index}?nonce=${encodeURIComponent(next.nonce)}`, { headers, cache: "no-store" });
      if (r.status === 425) { setTimeout(() => { fetching = false; }, 150); return; }
      if (!r.ok) throw new Error(String(r.status));
      const body = await r.json();
      showStep(body.step);
      next = body.next;
    } catch (e) {
      failed = true;
      setStatus("The next instruction could not be loaded: this video check has ended. Please start a new one.", true);
    }
    fetching = false;
  }

  async function schedule(stream) {
    const mime = pickMime();
    if (mime === null) { setStatus("This browser cannot record video. Please use a recent Chrome, Safari or Firefox.", true); return; }
    const r = await fetch(`${api}/start`, { method: "POST", headers, cache: "no-store" });
    if (!r.ok) { setStatus("This video check has already been used or has expired.", true); return; }
    const first = await r.json();
    flashes = first.flashes; next = first.next; showStep(first.step);
    const rec = mime ? new MediaRecorder(stream, { mimeType: mime }) : new MediaRecorder(stream);
    const chunks = [];
    rec.ondataavailable = (e) => { if (e.data && e.data.size) chunks.push(e.data); };
    rec.onstop = () => { if (!failed) upload(new Blob(chunks, { type: rec.mimeType || "video/webm" })); };
    let t0 = 0;
    function tick() {
      const t = (performance.now() - t0) / 1000;
      if (next && !fetching && !failed && t >= next.due_s - 0.3) fetchNext();
      const last = steps[steps.length - 1];
      const done = failed || (!next && t >= last.end_s + 0.6);
      let step = null;
      for (const s of steps) { if (t >= s.start_s && t < s.end_s) step = s; }
      const text = step ? step.instruction : "";
      if (instruction.textContent !== text) instruction.textContent = text;
      let f = null;
      for (const x of flashes) { if (t >= x.start_s && t < x.end_s) f = x; }
      if (f) {
        flash.style.background = `rgb(${f.rgb[0]},${f.rgb[1]},${f.rgb[2]})`;
        flash.classList.add("on");
        flashText.textContent = text;
      } else {
        flash.classList.remove("on");
      }
      if (!done) requestAnimationFrame(tick);
      else { flash.classList.remove("on"); instruction.textContent = failed ? "" : "Done"; if (rec.state !== "inactive") rec.stop(); }
    }
    rec.onstart = () => { t0 = performance.now(); requestAnimationFrame(tick); };
    rec.start(500);
    setStatus("Recording…");
  }

  async function upload(blob) {
    flash.classList.remove("on");
    setStatus("Sending your video…");
    const form = new FormData();
    const ext = blob.type.indexOf("mp4") >= 0 ? "mp4" : "webm";
    form.append("video", blob, `session.${ext}`);
    try {
      const up = { "X-Liveness-Token": token };
      if (cfg.consentToken) up["X-Consent-Token"] = cfg.consentToken;
      const r = await fetch(uploadUrl, { method: "POST", headers: up, body: form });
      if (r.ok) {
        setStatus("Thank you. Your video was sent; you can close this page.");
        document.body.dataset.uploaded = "1";
        if (cfg.consentToken) {
          const b = await r.json();
          document.dispatchEvent(new CustomEvent("consent-received", { detail: b }));
        }
      } else {
        let msg = "The video could not be sent.";
        try { const b = await r.json(); if (typeof b.detail === "string") msg += " " + b.detail; } catch (e) { /* keep */ }
        setStatus(msg, true);
        document.body.dataset.uploaded = "error";
      }
    } catch (e) {
      setStatus("The video could not be sent: check your connection and try again.", true);
      document.body.dataset.uploaded = "error";
    }
    preview.srcObject && preview.srcObject.getTracks().forEach((t) => t.stop());
  }

  startBtn.addEventListener("click", async () => {
    startBtn.disabled = true;
    try {
      const stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: "user", width: { ideal: 1280 }, height: { ideal: 720 } }, audio: withAudio });
      preview.srcObject = stream;
      await preview.play().catch(() => {});
      await schedule(stream);
    } catch (e) {
      setStatus("The camera could not be opened. Allow camera access for this page and try again.", true);
      startBtn.disabled = false;
    }
  });

  loadScript().catch(() => setStatus("This video check could not be loaded.", true));
})();
