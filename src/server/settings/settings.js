// The settings pages' script: served as /settings/settings.js (the pages
// allow no inline script). Every change is a fetch carrying the page's
// CSRF token; the server answers JSON, errors as {"error", "message"}.
(function () {
  "use strict";
  var body = document.body;
  var page = body.getAttribute("data-page");
  var RETURN_KEY = "callbook.return";
  var FLASH_KEY = "callbook.flash";
  var CHANNEL = "callbook-settings";

  function channel() {
    return typeof BroadcastChannel === "function" ? new BroadcastChannel(CHANNEL) : null;
  }

  // A signed link was just opened: go on to the page (a navigation this
  // page starts, so the session cookie goes with it).
  if (page === "open") {
    location.replace(body.getAttribute("data-next"));
    return;
  }

  // The provider sent the browser back: tell the settings page, then
  // close the popup, or (no popup) go back to the page that started it.
  if (page === "oauth-done") {
    var ch = channel();
    if (ch) { ch.postMessage("connected"); }
    var back = sessionStorage.getItem(RETURN_KEY);
    if (back) {
      sessionStorage.removeItem(RETURN_KEY);
      if (back.charAt(0) === "/" && back.charAt(1) !== "/") {
        sessionStorage.setItem(FLASH_KEY, body.getAttribute("data-message") || "");
        location.replace(back);
        return;
      }
    }
    if (window.opener || window.name === "callbook-connect") { window.close(); }
    return;
  }

  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";
  var status = document.getElementById("status");

  function say(text) { if (status) { status.textContent = text; } }

  var flash = sessionStorage.getItem(FLASH_KEY);
  if (flash) { sessionStorage.removeItem(FLASH_KEY); say(flash); }

  // Reloads the page through a navigation it starts itself.
  function refresh(message) {
    if (message) { sessionStorage.setItem(FLASH_KEY, message); }
    location.assign(location.pathname);
  }

  function call(method, path, payload) {
    var init = { method: method, headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" };
    if (payload !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(payload);
    }
    return fetch(path, init).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (json) {
        if (!resp.ok) {
          var err = new Error(json.message || ("request failed: " + resp.status));
          err.code = json.error || "";
          throw err;
        }
        return json;
      });
    });
  }

  function each(selector, fn) {
    Array.prototype.forEach.call(document.querySelectorAll(selector), fn);
  }

  if (page === "settings") {
    var ch2 = channel();
    if (ch2) { ch2.onmessage = function () { refresh("Calendar connected."); }; }

    each("button[data-connect]", function (button) {
      button.addEventListener("click", function () {
        var provider = button.getAttribute("data-connect");
        // Opened now, inside the click, so a popup blocker lets it through;
        // sent to the provider once the connect has started.
        var popup = window.open("", "callbook-connect", "popup,width=520,height=700");
        say("Opening the sign-in…");
        call("POST", "/settings/connections/" + provider).then(function (started) {
          if (popup && !popup.closed) {
            popup.location.href = started.authorize_url;
            var timer = setInterval(function () {
              if (popup.closed) { clearInterval(timer); refresh(); }
            }, 500);
          } else {
            // Popups blocked: sign in in this window and come back here.
            sessionStorage.setItem(RETURN_KEY, location.pathname);
            location.assign(started.authorize_url);
          }
        }).catch(function (e) {
          if (popup) { popup.close(); }
          say(e.message);
        });
      });
    });

    each("button[data-disconnect]", function (button) {
      button.addEventListener("click", function () {
        var provider = button.getAttribute("data-disconnect");
        call("DELETE", "/settings/connections/" + provider).then(function () {
          refresh(button.getAttribute("data-done"));
        }).catch(function (e) { say(e.message); });
      });
    });

    var save = document.getElementById("save");
    if (save) {
      save.addEventListener("click", function () {
        var steps = [];
        each("select[data-calendar]", function (select) {
          if (select.value !== select.getAttribute("data-initial")) {
            steps.push(["PUT", "/settings/connections/" + select.getAttribute("data-calendar") + "/calendar",
              { calendar_id: select.value }]);
          }
        });
        var chosen = document.querySelector('input[name="active_provider"]:checked');
        if (chosen && !chosen.hasAttribute("data-initial")) {
          steps.push(["PUT", "/settings/active_provider", { provider: chosen.value }]);
        }
        var run = steps.reduce(function (p, s) {
          return p.then(function () { return call(s[0], s[1], s[2]); });
        }, Promise.resolve());
        run.then(function () { refresh("Saved."); }).catch(function (e) { say(e.message); });
      });
    }
  }

  if (page === "campaign") {
    var form = document.getElementById("booking-form");
    var campaign = body.getAttribute("data-campaign");

    function value(field) {
      var el = form.querySelector('[data-field="' + field + '"]');
      return el ? el.value.trim() : "";
    }
    function number(field) {
      var v = value(field);
      if (v === "") { return null; }
      var n = Number(v);
      return isFinite(n) ? n : v;
    }
    function clearErrors() {
      each("[data-error-for]", function (p) { p.textContent = ""; p.hidden = true; });
      each("[aria-invalid]", function (el) { el.removeAttribute("aria-invalid"); });
    }
    // Shows the API's message beside the field it names
    // ("booking.rules.window.start: …"), or the nearest enclosing one.
    function showError(message) {
      var cut = message.indexOf(": ");
      var path = cut > 0 ? message.slice(0, cut) : "";
      var text = cut > 0 ? message.slice(cut + 2) : message;
      if (path.indexOf("booking.") === 0) { path = path.slice(8); }
      path = path.replace(/\[\d+\]/g, "");
      while (path) {
        var slot = form.querySelector('[data-error-for="' + path + '"]');
        if (slot) {
          slot.textContent = text;
          slot.hidden = false;
          var input = form.querySelector('[data-field="' + path + '"]');
          if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
          say("Not saved: " + message);
          return;
        }
        var dot = path.lastIndexOf(".");
        path = dot > 0 ? path.slice(0, dot) : "";
      }
      var general = form.querySelector('[data-error-for="form"]');
      general.textContent = message;
      general.hidden = false;
      say("Not saved: " + message);
    }

    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      clearErrors();
      var days = [];
      each('input[name="day"]:checked', function (d) { days.push(d.value); });
      var kind = value("meeting.type");
      var meeting = { type: kind };
      if (kind === "phone") { meeting.number = value("meeting.number"); }
      if (kind === "in_person") { meeting.address = value("meeting.address"); }
      var booking = {
        enabled: form.querySelector('[data-field="enabled"]').checked,
        rules: {
          timezone: value("rules.timezone"),
          length_minutes: number("rules.length_minutes"),
          slot_step_minutes: number("rules.slot_step_minutes"),
          window: { days: days, start: value("rules.window.start"), end: value("rules.window.end") },
          buffer_before_minutes: number("rules.buffer_before_minutes"),
          buffer_after_minutes: number("rules.buffer_after_minutes"),
          min_notice_minutes: number("rules.min_notice_minutes"),
          look_ahead_days: number("rules.look_ahead_days")
        },
        meeting: meeting,
        title: value("title"),
        description: value("description")
      };
      var country = value("default_country");
      if (country) { booking.default_country = country; }
      call("PUT", "/settings/campaigns/" + encodeURIComponent(campaign),
        { owner: value("owner"), booking: booking })
        .then(function () { refresh("Saved."); })
        .catch(function (e) { showError(e.message); });
    });

    var kindSelect = form.querySelector('[data-field="meeting.type"]');
    function showMeetingFields() {
      each("[data-meeting]", function (row) {
        row.hidden = row.getAttribute("data-meeting") !== kindSelect.value;
      });
    }
    kindSelect.addEventListener("change", showMeetingFields);
    showMeetingFields();
  }
})();
