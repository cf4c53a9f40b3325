// Forms with data-confirm ask before they submit (an inline onsubmit would not run under the service's CSP).
document.addEventListener("submit", function (e) {
  var msg = e.target && e.target.getAttribute && e.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) {
    e.preventDefault();
  }
}, true);
