// Shared parts of the 3-D views (viewer3d-*.js): page data, a "latest wins" image loader, view-state
// queries, a drag helper and the status line. Every image is rendered by the farm; the browser only
// builds URLs. At most one image request is in flight per viewport; a newer state replaces a waiting
// one. While the pointer drags, views are asked as previews; ~150 ms after it rests, a full still.
(function (global) {
  "use strict";
  var REST_MS = 150;
  var data = JSON.parse(document.getElementById("v3d-data").textContent);

  function Loader(img, onDone) { this.img = img; this.cur = null; this.next = null; this.onDone = onDone; }
  Loader.prototype.want = function (url) {
    if (this.cur) { this.next = this.cur.url === url ? null : url; return; }
    this.start(url);
  };
  Loader.prototype.start = function (url) {
    var self = this, im = new Image(), req = { url: url, im: im };
    this.cur = req;
    im.onload = function () { self.end(req, true); };
    im.onerror = function () { self.end(req, false); };
    im.src = url;
  };
  Loader.prototype.end = function (req, ok) {
    if (this.cur !== req) return;
    this.cur = null;
    if (ok) { this.img.src = req.url; this.img.dataset.shown = req.url; }
    if (this.onDone) this.onDone(ok, req.url);
    var next = this.next;
    this.next = null;
    if (next) this.start(next);
  };

  // A view-state query: keys sorted, empty values and values equal to `defaults` left out, as in
  // the server's canonical form, so equal views share a URL and the browser cache.
  function query(state, defaults) {
    defaults = defaults || {};
    return Object.keys(state).sort().filter(function (k) {
      var v = state[k];
      return v !== null && v !== undefined && v !== "" && v !== false && v !== defaults[k];
    }).map(function (k) {
      var v = state[k] === true ? "1" : state[k];
      if (typeof v === "number") v = Math.round(v * 1000) / 1000;
      return encodeURIComponent(k) + "=" + encodeURIComponent(v);
    }).join("&");
  }

  function url(operation, state, defaults) { return data.base + operation + "?" + query(state, defaults); }

  // Call fn after the pointer has rested for REST_MS.
  function rester(fn) {
    var timer = null;
    return function () { clearTimeout(timer); timer = setTimeout(fn, REST_MS); };
  }

  // Pointer drags on el: handlers.start(ev) → false cancels; move(dx, dy, ev) with the step since
  // the last event; end(ev). Touch and mouse alike (pointer events).
  function drag(el, handlers) {
    var last = null;
    el.addEventListener("pointerdown", function (ev) {
      if (handlers.start && handlers.start(ev) === false) return;
      last = { x: ev.clientX, y: ev.clientY };
      el.setPointerCapture(ev.pointerId);
      ev.preventDefault();
    });
    el.addEventListener("pointermove", function (ev) {
      if (!last) return;
      var dx = ev.clientX - last.x, dy = ev.clientY - last.y;
      last = { x: ev.clientX, y: ev.clientY };
      if (dx || dy) handlers.move(dx, dy, ev);
    });
    function stop(ev) {
      if (!last) return;
      last = null;
      if (handlers.end) handlers.end(ev);
    }
    el.addEventListener("pointerup", stop);
    el.addEventListener("pointercancel", stop);
  }

  var statusTimer = null;
  function status(text) {
    var el = document.querySelector(".vw-status");
    if (!el) return;
    el.textContent = text;
    el.classList.add("on");
    clearTimeout(statusTimer);
    statusTimer = setTimeout(function () { el.classList.remove("on"); }, 4000);
  }

  // Tell the user why an image failed: the server's readable message (a series that is not a
  // volume, an expired link), fetched again as text only on failure.
  function explain(failedUrl) {
    fetch(failedUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (r.ok) return null;
        return r.json().then(function (body) {
          if (r.status === 403) status(data.text.expired);
          else if (r.status === 400) status(data.text.notVolume + " " + body.error);
          else status(body.error || data.text.failed);
        });
      }).catch(function () { status(data.text.failed); });
  }

  // Output size of a viewport in device pixels, capped.
  function sizeOf(el, cap) {
    var r = el.getBoundingClientRect(), ratio = Math.min(global.devicePixelRatio || 1, 2);
    var w = Math.max(64, Math.round(r.width * ratio)), h = Math.max(64, Math.round(r.height * ratio));
    var s = Math.min(1, (cap || 1024) / Math.max(w, h));
    return { w: Math.round(w * s), h: Math.round(h * s) };
  }

  global.V3D = { data: data, Loader: Loader, query: query, url: url, rester: rester, drag: drag,
                 status: status, explain: explain, sizeOf: sizeOf };
})(window);
