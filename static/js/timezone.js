// The login form proposes the browser's time zone (an IANA name such as Europe/Berlin); the server
// stores it at the first login only, and the person can change it on the time zone page.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var field = document.querySelector("[data-browser-time-zone]");
    if (!field || field.value) return;
    try {
      field.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (e) {
      field.value = "";
    }
  });
})();
