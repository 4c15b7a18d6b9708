// The console works without this file: it only keeps a page's content
// current from the server-sent events feed, and adds "copy" buttons.
(function () {
  "use strict";
  function wireCopy(root) {
    root.querySelectorAll("button.copy[data-copy]").forEach(function (b) {
      b.hidden = false;
      b.addEventListener("click", function () {
        var t = document.getElementById(b.getAttribute("data-copy"));
        if (t && navigator.clipboard) { navigator.clipboard.writeText(t.value); b.textContent = "Copied"; }
      });
    });
  }
  wireCopy(document);
  var main = document.querySelector("main[data-live]");
  if (!main || !window.EventSource) { return; }
  var status = document.getElementById("live-status");
  var busy = false, again = false;
  function typing() {
    var a = document.activeElement;
    return a && main.contains(a) && /^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName);
  }
  function refresh() {
    if (busy || typing()) { again = true; return; }
    busy = true;
    fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var m = new DOMParser().parseFromString(html, "text/html").querySelector("main");
        if (m) { main.innerHTML = m.innerHTML; wireCopy(main); }
        if (status) { status.textContent = "Live: updated " + new Date().toLocaleTimeString(); }
      })
      .finally(function () { busy = false; if (again) { again = false; setTimeout(refresh, 500); } });
  }
  var es = new EventSource("/events");
  var timer = null;
  // The correlator takes a moment to apply an event: refresh soon, and
  // once more a little later.
  es.addEventListener("change", function () {
    if (timer) { return; }
    timer = setTimeout(function () { timer = null; refresh(); setTimeout(refresh, 2000); }, 300);
  });
  es.onerror = function () { if (status) { status.textContent = "Live updates paused: reconnecting"; } };
})();
