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

// Keyboard and screen-reader users: after an in-page step (an htmx swap the user started with a
// submit, click or change), focus goes to the region that changed, not to the top of the page:
// to its error first, else its status message, else its heading. Swaps nobody asked for (polling,
// refreshes on an event) leave focus alone; htmx itself keeps focus on an element with an id.
(function () {
  "use strict";
  var USER_EVENTS = ["submit", "click", "change"];
  var targetId = null;

  function focusable(el) {
    if (!el.matches("a[href], button, input, select, textarea, [tabindex]")) {
      el.setAttribute("tabindex", "-1");
    }
    el.focus();
  }

  function firstWithText(region, selector) {
    var found = region.querySelectorAll(selector);
    for (var i = 0; i < found.length; i++) {
      if (found[i].textContent.trim()) return found[i];
    }
    return null;
  }

  function focusIn(region) {
    var invalid = region.querySelector(".field.has-error input, .field.has-error select, .field.has-error textarea");
    var target = firstWithText(region, "[role=alert]") || invalid ||
      firstWithText(region, ".messages, [role=status]") ||
      region.querySelector("h1, h2, h3") || region;
    focusable(target);
  }

  document.addEventListener("htmx:beforeSwap", function (event) {
    targetId = event.detail.target ? event.detail.target.id : null;
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    var config = event.detail.requestConfig || {};
    var trigger = config.triggeringEvent;
    if (!trigger || USER_EVENTS.indexOf(trigger.type) < 0) return;
    var active = document.activeElement;
    if (active && active !== document.body && document.contains(active)) return;
    var region = (targetId && document.getElementById(targetId)) ||
      (document.contains(event.detail.target) ? event.detail.target : null) ||
      document.getElementById("main");
    if (region) focusIn(region);
  });

  // After a plain POST: start at its error when it was refused, else at the message that says
  // what it did (the redirect's page shows it at the top of <main>).
  document.addEventListener("DOMContentLoaded", function () {
    var main = document.getElementById("main");
    if (!main) return;
    var target = firstWithText(main, "[role=alert]") || firstWithText(main, ".messages");
    if (target) focusable(target);
  });
})();

// A region that scrolls sideways (a wide table on a phone) must be reachable by keyboard:
// make it focusable and name it, but only while it actually scrolls.
(function () {
  "use strict";
  function label(wrap) {
    var caption = wrap.querySelector("caption");
    if (caption && caption.textContent.trim()) return caption.textContent.trim();
    var heading = wrap.closest("article, section, .card, main");
    heading = heading && heading.querySelector("h1, h2, h3");
    return (heading ? heading.textContent.trim().replace(/\s+/g, " ") + ": " : "") +
      "table, scrolls sideways";
  }
  function mark() {
    var wraps = document.querySelectorAll(".table-wrap, pre");
    var used = {};
    var named = document.querySelectorAll("[data-scroll-marked]");
    for (var k = 0; k < named.length; k++) used[named[k].getAttribute("aria-label")] = true;
    for (var i = 0; i < wraps.length; i++) {
      var wrap = wraps[i];
      if (wrap.scrollWidth > wrap.clientWidth + 1) {
        if (!wrap.hasAttribute("tabindex")) {
          // Each region needs a name of its own (two regions named alike confuse a listener).
          var name = label(wrap), n = 2, unique = name;
          while (used[unique]) unique = name + " (" + n++ + ")";
          used[unique] = true;
          wrap.setAttribute("tabindex", "0");
          wrap.setAttribute("role", "region");
          wrap.setAttribute("aria-label", unique);
          wrap.setAttribute("data-scroll-marked", "");
        }
      } else if (wrap.hasAttribute("data-scroll-marked")) {
        wrap.removeAttribute("tabindex");
        wrap.removeAttribute("role");
        wrap.removeAttribute("aria-label");
        wrap.removeAttribute("data-scroll-marked");
      }
    }
  }
  var pending = null;
  function later() {
    if (pending) clearTimeout(pending);
    pending = setTimeout(mark, 100);
  }
  document.addEventListener("DOMContentLoaded", mark);
  document.addEventListener("htmx:afterSettle", mark);
  window.addEventListener("resize", later);
})();

// A running containment clock counts on between the page's updates. It counts from the seconds
// the server gave when it rendered the clock, not from the browser's own clock (which may be set
// wrong), and says it in the server's words: the two largest units (incidents/clocks.py).
(function () {
  "use strict";
  function span(seconds) {
    seconds = Math.floor(Math.abs(seconds));
    var days = Math.floor(seconds / 86400);
    var hours = Math.floor((seconds % 86400) / 3600);
    var minutes = Math.floor((seconds % 3600) / 60);
    if (days) return hours ? days + " d " + hours + " h" : days + " d";
    if (hours) return minutes ? hours + " h " + minutes + " min" : hours + " h";
    if (minutes) return minutes + " min";
    return (seconds % 60) + " s";
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-clock-left]").forEach(function (clock) {
      if (!clock.tdShownAt) clock.tdShownAt = now;  // a clock swapped in starts from its own
      var passed = Math.floor((now - clock.tdShownAt) / 1000);
      var left = Number(clock.getAttribute("data-clock-left")) - passed;
      var elapsed = Number(clock.getAttribute("data-clock-elapsed")) + passed;
      var headline = clock.querySelector("[data-clock-headline]");
      var runningFor = clock.querySelector("[data-clock-running-for]");
      if (headline) {
        headline.textContent = left < 0 ? "Target overrun by " + span(left) : span(left) + " left";
      }
      if (runningFor) runningFor.textContent = span(elapsed);
      clock.classList.toggle("overrun", left < 0);
    });
  }

  tick();
  document.addEventListener("htmx:afterSettle", tick);
  window.setInterval(tick, 1000);
})();
