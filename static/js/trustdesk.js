// TrustDesk's own small enhancements. No inline scripts anywhere (CSP): behaviour lives here.
(function () {
  "use strict";
  // Elements with data-confirm ask before submitting (e.g. overrides, revocations).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  }, true);
  // Copy buttons: <button data-copy="#id">.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (source && navigator.clipboard) {
      navigator.clipboard.writeText(source.value || source.textContent.trim());
      button.textContent = "Copied";
    }
  });
})();
