// The public report form checks itself before sending (the server checks the same rules again, in
// cases/validity.py, and creates no case while anything is missing): each problem is shown beside its field.
(function () {
  "use strict";
  var form = document.getElementById("report-form");
  if (!form) return;
  var eu = (form.getAttribute("data-eu") || "").split(" ");
  var URL_RE = /^https?:\/\/[^\s\/$.?#]\S*$/i;
  var EMAIL_RE = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;

  function val(id) { var el = document.getElementById(id); return el ? el.value.trim() : ""; }

  function problems() {
    var out = {};
    var category = val("category");
    var jurisdiction = val("jurisdiction").toUpperCase();
    var possiblyEu = (jurisdiction === "" || eu.indexOf(jurisdiction) >= 0) && category !== "csam";
    var urls = val("content_locations").split(/\s+/).filter(function (u) { return u; });
    var email = val("reporter_email");
    if (!category) out.category = "Choose what kind of content you are reporting.";
    if (!urls.length) out.content_locations = "Give the exact web address (starting with https://) of each place the content is shown.";
    else {
      var bad = urls.filter(function (u) { return !URL_RE.test(u); });
      if (bad.length) out.content_locations = "This is not a web address starting with http:// or https://: " + bad.slice(0, 3).join(", ");
    }
    if (!jurisdiction) out.jurisdiction = "Say which country's or region's law applies (for example US, UK, DE).";
    if (possiblyEu && val("explanation").length < 10) out.explanation = "Tell us in a sentence or two why the content is illegal or abusive.";
    if (category === "ncii") {
      var role = val("reporter_role");
      if (role !== "depicted_person" && role !== "authorised_representative")
        out.reporter_role = "A removal request for intimate images must come from the person shown or someone acting for them.";
      if (!val("signature")) out.signature = "Type your full name as your signature.";
    }
    if (possiblyEu && !val("reporter_name")) out.reporter_name = "Give your name.";
    if (email && !EMAIL_RE.test(email)) out.reporter_email = "This is not a valid email address.";
    else if (possiblyEu && !email) out.reporter_email = "Give your email address.";
    else if (!email && !val("reporter_contact") && category !== "csam")
      out.reporter_email = "Give an email address or another way to reach you, so we can tell you the decision.";
    if (!document.getElementById("good_faith").checked)
      out.good_faith = "Tick the box to confirm that the report is accurate and made in good faith.";
    return out;
  }

  function show(found) {
    var errs = form.querySelectorAll(".field-error");
    for (var i = 0; i < errs.length; i++) {
      var name = errs[i].id.slice(4);
      var msg = found[name] || "";
      errs[i].textContent = msg;
      errs[i].hidden = !msg;
      var input = document.getElementById(name);
      if (input) input.setAttribute("aria-invalid", msg ? "true" : "false");
    }
  }

  form.addEventListener("submit", function (e) {
    var found = problems();
    show(found);
    var names = Object.keys(found);
    if (names.length) {
      e.preventDefault();
      var first = document.getElementById(names[0]);
      if (first) first.focus();
    }
  });
})();
