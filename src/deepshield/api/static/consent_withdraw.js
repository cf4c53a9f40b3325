// Withdrawal page: the reference and PIN shown after the consent recording withdraw the consent.
(function () {
  "use strict";
  const form = document.getElementById("withdraw-form"), out = document.getElementById("result");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = { pin: form.pin.value.trim(), reason: form.reason.value };
    const ref = encodeURIComponent(form.reference.value.trim());
    const r = await fetch(`/v1/consents/${ref}/withdraw`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(data) });
    out.className = r.ok ? "" : "error";
    out.textContent = r.ok ? "Your consent is withdrawn: every check of it now reads revoked."
      : "Unknown reference or wrong PIN.";
  });
})();
