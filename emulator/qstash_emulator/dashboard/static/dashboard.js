// The QStash emulator's dashboard: live updates (server-sent events) and actions. Plain
// JavaScript, no build step. Every action is a POST with the dashboard key (see security.py).
(function () {
  "use strict";
  var key = document.querySelector('meta[name="dashboard-key"]').content;
  var content = document.getElementById("content");
  var clock = document.getElementById("clock");
  var live = document.getElementById("live");
  var toast = document.getElementById("toast");

  function iso(ms) {
    var d = new Date(ms);
    var s = d.toISOString().replace("T", " ").replace("Z", "");
    return (s.endsWith(".000") ? s.slice(0, -4) : s) + " UTC";
  }

  function setClock(ms) {
    clock.dataset.now = String(ms);
    clock.textContent = iso(ms);
  }

  function say(text, bad) {
    toast.textContent = text;
    toast.className = bad ? "show bad" : "show";
    clearTimeout(say.timer);
    say.timer = setTimeout(function () { toast.className = ""; }, 4000);
  }

  // -- live content ------------------------------------------------------------------------
  var loading = false, again = false;

  function fragmentUrl() {
    var url = new URL(window.location.href);
    url.searchParams.set("fragment", "1");
    return url.toString();
  }

  function refresh() {
    if (loading) { again = true; return; }
    loading = true;
    fetch(fragmentUrl(), { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) swap(html); })
      .catch(function () {})
      .then(function () {
        loading = false;
        if (again) { again = false; refresh(); }
      });
  }

  // Replace the content, keeping what the person did to it: ticked boxes, opened details, focus.
  function swap(html) {
    var checked = {}, open = {}, typed = {}, focusKey = null;
    content.querySelectorAll("input[name=sel]:checked").forEach(function (el) { checked[el.value] = true; });
    // What is being typed into a form (a notify's event data) survives the update.
    content.querySelectorAll("form[id] textarea, form[id] input:not([type=hidden])").forEach(function (el) { typed[el.form.id + "|" + el.name] = el.value; });
    content.querySelectorAll("details[id]").forEach(function (el) { open[el.id] = el.open; });
    var active = document.activeElement;
    if (active && content.contains(active)) focusKey = keyOf(active);
    content.innerHTML = html;
    content.querySelectorAll("input[name=sel]").forEach(function (el) { if (checked[el.value]) el.checked = true; });
    content.querySelectorAll("details[id]").forEach(function (el) { if (el.id in open) el.open = open[el.id]; });
    content.querySelectorAll("form[id] textarea, form[id] input:not([type=hidden])").forEach(function (el) {
      var k = el.form.id + "|" + el.name;
      if (k in typed) el.value = typed[k];
    });
    if (focusKey) {
      var same = Array.prototype.find.call(content.querySelectorAll(FOCUSABLE), function (el) { return keyOf(el) === focusKey; });
      if (same) same.focus();
    }
    document.dispatchEvent(new CustomEvent("dashboard:updated"));
  }

  // Where focus was, in terms that survive a re-render: its row and its place in the row (a
  // "Pause" button that became "Resume" keeps the focus), or what it points at.
  var ROWS = "[data-message-id], [data-dlq-id], [data-schedule-id], [data-queue], [data-key], [data-run-id], [data-event-id], details[id]";
  var FOCUSABLE = "a, button, input, select, summary, textarea";

  function keyOf(el) {
    var row = el.closest(ROWS);
    if (!row) return [el.tagName, el.dataset.action || el.getAttribute("href") || el.value || el.textContent].join("|");
    var id = row.dataset.messageId || row.dataset.dlqId || row.dataset.scheduleId || row.dataset.queue || row.dataset.key || row.dataset.runId || row.dataset.eventId || row.id;
    return ["row", id, Array.prototype.indexOf.call(row.querySelectorAll(FOCUSABLE), el)].join("|");
  }

  function connect() {
    var source = new EventSource("/__dashboard/events");
    // What the page was rendered at: anything newer (even before the stream connected) refreshes.
    var version = Number(document.body.dataset.version);
    var shownNow = Number(clock.dataset.now);
    source.addEventListener("change", function (e) {
      var data = JSON.parse(e.data);
      // A new version, or a moved clock (relative times and delayed states change with it).
      if (data.version !== version || data.now !== shownNow) refresh();
      version = data.version;
      shownNow = data.now;
      setClock(data.now);
    });
    var lastRefresh = Date.now();
    document.addEventListener("dashboard:updated", function () { lastRefresh = Date.now(); });
    source.addEventListener("clock", function (e) {
      setClock(JSON.parse(e.data).now);
      // On the real clock "in 5m" goes stale by itself: re-render now and then.
      if (Date.now() - lastRefresh > 15000) { lastRefresh = Date.now(); refresh(); }
    });
    source.onopen = function () { live.className = "live on"; live.title = "live updates: connected"; };
    source.onerror = function () { live.className = "live"; live.title = "live updates: reconnecting"; };
  }

  // -- actions -----------------------------------------------------------------------------
  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Dashboard-Key": key },
      body: JSON.stringify(body || {}),
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (!r.ok) throw new Error(data.error || ("HTTP " + r.status));
        return data;
      });
    });
  }

  function run(button, url, body) {
    if (button.getAttribute("aria-busy") === "true") return;  // one request per click
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    // Not `disabled`: that would take the keyboard focus away from the button.
    button.setAttribute("aria-busy", "true");
    post(url, body)
      .then(function (data) { say(data.message || "done"); refresh(); })
      .catch(function (err) { say(err.message, true); })
      .then(function () { button.removeAttribute("aria-busy"); });
  }

  document.addEventListener("click", function (e) {
    var button = e.target.closest("button[data-action], button[data-bulk]");
    if (!button) return;
    e.preventDefault();
    if (button.dataset.action) {
      run(button, button.dataset.action, button.dataset.body ? JSON.parse(button.dataset.body) : {});
      return;
    }
    var ids = Array.prototype.map.call(content.querySelectorAll("input[name=sel]:checked"), function (el) { return el.value; });
    if (!ids.length) { say("select at least one row", true); return; }
    var body = {};
    body[button.dataset.field] = ids;
    run(button, button.dataset.bulk, body);
  });

  // A form with data-action (notify an event) posts its fields as JSON; empty ones are left out.
  document.addEventListener("submit", function (e) {
    var form = e.target.closest("form[data-action]");
    if (!form) return;
    e.preventDefault();
    var body = {};
    new FormData(form).forEach(function (value, name) { if (value !== "" || name === "data") body[name] = value; });
    var button = form.querySelector("button[type=submit], button:not([type])") || form;
    if (button.getAttribute("aria-busy") === "true") return;
    button.setAttribute("aria-busy", "true");
    post(form.dataset.action, body)
      .then(function (data) {
        say(data.message || "done");
        form.querySelectorAll("textarea").forEach(function (el) { el.value = ""; });
        refresh();
      })
      .catch(function (err) { say(err.message, true); })
      .then(function () { button.removeAttribute("aria-busy"); });
  });

  document.addEventListener("change", function (e) {
    if (e.target.matches("[data-select-all]")) {
      content.querySelectorAll("input[name=sel]").forEach(function (el) { el.checked = e.target.checked; });
    }
    if (e.target.matches("form.filters select")) e.target.form.submit();  // no extra click
    if (e.target.id === "user-switch") {
      // One cookie per port (cookies ignore ports): emulators side by side keep their own user.
      var port = window.location.port || (window.location.protocol === "https:" ? "443" : "80");
      document.cookie = "qstash_dashboard_user_" + port + "=" + encodeURIComponent(e.target.value) + "; path=/__dashboard; SameSite=Strict";
      var url = new URL(window.location.href);
      url.searchParams.delete("user");
      window.location.href = url.toString();
    }
  });

  connect();
})();
