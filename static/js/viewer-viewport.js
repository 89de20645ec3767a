// One viewport: a stack, a view state, and the frame it shows.
//
// Frames are server-rendered images; the state lives in each frame's URL (PacsGeom.query).
// At most one frame request is in flight per viewport (three while scrolling through the stack):
// a newer state replaces the waiting one (stale intermediate states are dropped, never queued).
// While the pointer drags, frames are asked at half size and JPEG q60; ~150 ms after it rests, a
// full-quality still follows. When idle, the next few images in the scroll direction are fetched
// ahead into the browser cache.
(function (global) {
  "use strict";
  var G = global.PacsGeom;
  var REST_MS = 150, PREFETCH_AHEAD = 4, PREFETCH_BEHIND = 1, LOADED_MAX = 800;

  // ---- a "latest wins" image loader ----
  // One frame request in flight, and one waiting that any newer state replaces. Steps of a
  // scroll through the stack may have PIPELINE in flight: on a 50 ms link one request at a time
  // caps a scroll at ~14 images/s however fast the server is; a frame that arrives after a newer
  // one is on screen is not shown. A prefetch (background) runs only when nothing else does.
  var PIPELINE = 3;
  function Loader(onShow) { this.flights = []; this.next = null; this.onShow = onShow; this.seq = 0; this.shownSeq = 0; }
  Loader.prototype.foreground = function () { return this.flights.filter(function (f) { return !f.background; }); };
  Loader.prototype.want = function (req) {
    var self = this, fg = this.foreground();
    req.seq = ++this.seq;
    if (fg.some(function (f) { return f.url === req.url; })) { this.next = null; return; }
    this.flights.filter(function (f) { return f.background; }).forEach(function (f) { self.drop(f); });
    if (fg.length < (req.pipelined ? PIPELINE : 1)) this.start(req);
    else this.next = req;  // replaces any older waiting state
  };
  Loader.prototype.background = function (req, done) {
    if (this.flights.length) return false;
    req.background = true; req.done = done;
    this.start(req);
    return true;
  };
  Loader.prototype.start = function (req) {
    var self = this, im = new Image();
    this.flights.push(req); req.im = im;
    im.onload = function () { self.end(req, true); };
    im.onerror = function () { self.end(req, false); };
    im.src = req.url;
  };
  Loader.prototype.end = function (req, ok) {
    var at = this.flights.indexOf(req);
    if (at < 0) return;
    this.flights.splice(at, 1);
    if (req.background) { if (req.done) req.done(ok); }
    else if (req.seq > this.shownSeq) { this.shownSeq = req.seq; this.onShow(req, ok); }
    var next = this.next;
    if (next && this.foreground().length < (next.pipelined ? PIPELINE : 1)) { this.next = null; this.start(next); }
  };
  Loader.prototype.drop = function (req) {
    req.im.onload = req.im.onerror = null;
    req.im.src = "";
    this.flights.splice(this.flights.indexOf(req), 1);
  };
  Loader.prototype.abort = function () {
    while (this.flights.length) this.drop(this.flights[0]);
    this.next = null;
  };
  Loader.prototype.busy = function () { return this.flights.length > 0; };

  function defaultState() {
    return { wc: null, ww: null, z: 1, px: 0, py: 0, rot: 0, hf: false, vf: false, inv: false, cm: "gray" };
  }

  function Viewport(el, app) {
    this.el = el; this.app = app;
    this.img = el.querySelector(".vp-img");
    this.svg = el.querySelector(".vp-svg");
    this.corners = el.querySelector(".vp-corners");
    this.stack = null; this.index = 0; this.dir = 1;
    this.state = defaultState();
    this.shown = null;      // the request whose image is on screen
    this.loaded = new Map(); // URLs the browser holds (shown or prefetched)
    var self = this;
    this.loader = new Loader(function (req, ok) { self.onFrame(req, ok); });
    this.lensLoader = new Loader(function (req, ok) { self.onLens(req, ok); });
    this.restTimer = null; this.idleTimer = null; this.retries = 0;
  }

  Viewport.defaultState = defaultState;
  Viewport.Loader = Loader;

  Viewport.prototype.setStack = function (stack, index, state) {
    this.stack = stack;
    this.index = Math.max(0, Math.min(index || 0, stack.images.length - 1));
    this.state = Object.assign(defaultState(), state || {});
    this.shown = null;
    this.el.classList.remove("empty");
    this.el.querySelector(".vp-empty").hidden = true;
    if (stack.corners) this.corners.innerHTML = stack.corners;
    this.render(false);
  };

  Viewport.prototype.image = function (i) { return this.stack.images[i === undefined ? this.index : i]; };
  Viewport.prototype.geom = function (i) { return this.stack.geoms[this.image(i)[3]]; };

  // Output size in device pixels (at most 2 per CSS pixel: sharper buys little, costs bandwidth).
  Viewport.prototype.size = function () {
    var r = this.el.getBoundingClientRect(), dpr = Math.min(global.devicePixelRatio || 1, 2);
    return { w: Math.max(16, Math.min(8192, Math.round(r.width * dpr))),
             h: Math.max(16, Math.min(8192, Math.round(r.height * dpr))), css: r };
  };

  Viewport.prototype.requestState = function (interactive) {
    var s = this.size(), st = Object.assign({}, this.state);
    G.tidy(st);
    if (interactive) {
      st.w = Math.max(16, Math.round(s.w / 2)); st.h = Math.max(16, Math.round(s.h / 2));
      st.fmt = "jpeg"; st.q = 60;
    } else {
      st.w = s.w; st.h = s.h; st.fmt = this.app.lossless ? "png" : "jpeg"; st.q = 90;
    }
    return st;
  };

  Viewport.prototype.url = function (i, st) {
    var im = this.image(i), q = G.query(st);
    return this.stack.frameBase + encodeURIComponent(im[0]) + "/" + im[1] + (q ? "?" + q : "");
  };

  // Ask for the current state; `interactive` while a drag is under way, `scrolling` for a step
  // through the stack (which may be pipelined).
  Viewport.prototype.render = function (interactive, scrolling) {
    if (!this.stack) return;
    var self = this, st = this.requestState(interactive), full = this.requestState(false);
    if (interactive && this.loaded.has(this.url(this.index, full))) { st = full; interactive = false; }
    var req = { url: this.url(this.index, st), index: this.index, state: st, interactive: interactive,
                full: Object.assign({}, st, { w: full.w, h: full.h }), pipelined: !!scrolling };
    clearTimeout(this.restTimer); clearTimeout(this.idleTimer);
    if (interactive) this.restTimer = setTimeout(function () { self.render(false); }, REST_MS);
    if (this.shown && this.shown.url === req.url) { this.shown.full = req.full; this.draw(); return; }
    this.loader.want(req);
  };

  Viewport.prototype.onFrame = function (req, ok) {
    if (!ok) {
      var self = this;
      this.el.classList.add("failed");
      if (this.retries++ < 3) {
        // An expired grant is renewed (the page may stay open for hours), anything else retried.
        this.app.recover(this, req.url).then(function () {
          setTimeout(function () { self.render(false); }, 500 * self.retries);
        });
      } else this.app.status(this.app.text.failed);
      return;
    }
    this.retries = 0;
    this.el.classList.remove("failed");
    this.remember(req.url);
    this.img.src = req.url;
    this.img.alt = this.app.text.image + " " + (req.index + 1) + "/" + this.stack.images.length;
    this.shown = req;
    this.draw();
    this.app.shown(this);
    if (!req.interactive && !this.loader.busy()) this.scheduleIdle();
  };

  Viewport.prototype.remember = function (url) {
    this.loaded.delete(url);
    this.loaded.set(url, true);
    if (this.loaded.size > LOADED_MAX) this.loaded.delete(this.loaded.keys().next().value);
  };

  // Prefetch neighbours, one request at a time, only while nothing else is wanted.
  Viewport.prototype.scheduleIdle = function () {
    var self = this;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(function () { self.prefetch(); }, 40);
  };

  Viewport.prototype.prefetch = function () {
    if (!this.stack || this.loader.busy()) return;
    var st = this.requestState(false), n = this.stack.images.length, self = this, order = [];
    for (var k = 1; k <= PREFETCH_AHEAD; k++) order.push(this.index + this.dir * k);
    for (k = 1; k <= PREFETCH_BEHIND; k++) order.push(this.index - this.dir * k);
    for (var i = 0; i < order.length; i++) {
      if (order[i] < 0 || order[i] >= n) continue;
      var url = this.url(order[i], st);
      if (this.loaded.has(url)) continue;
      this.loader.background({ url: url }, function (ok) {
        if (ok) self.remember(url);
        if (ok) self.scheduleIdle();
      });
      return;
    }
  };

  // ---- navigation ----
  Viewport.prototype.goTo = function (index, interactive) {
    if (!this.stack) return;
    var n = this.stack.images.length, next = Math.max(0, Math.min(n - 1, index));
    if (next === this.index) return;
    this.dir = next > this.index ? 1 : -1;
    this.index = next;
    this.render(!!interactive, !!interactive);
    this.app.scrolled(this);
  };
  Viewport.prototype.scrollBy = function (n, interactive) { this.goTo(this.index + n, interactive); };
  Viewport.prototype.find = function (sop, frame) {
    if (!this.stack) return -1;
    for (var i = 0; i < this.stack.images.length; i++) {
      if (this.stack.images[i][0] === sop && this.stack.images[i][1] === frame) return i;
    }
    return -1;
  };

  // ---- view changes ----
  Viewport.prototype.window = function () {
    if (this.state.ww) return [this.state.wc, this.state.ww];
    return this.stack && this.stack.window ? this.stack.window : null;
  };
  Viewport.prototype.setWindow = function (center, width, interactive) {
    this.state.wc = center; this.state.ww = Math.max(1, width);
    this.render(interactive); this.app.changed(this, "wl");
  };
  Viewport.prototype.clearWindow = function () {
    this.state.wc = this.state.ww = null; this.render(false); this.app.changed(this, "wl");
  };
  Viewport.prototype.set = function (changes, interactive) {
    Object.assign(this.state, changes); this.render(interactive); this.app.changed(this, "view");
  };
  Viewport.prototype.reset = function () {
    this.state = defaultState(); this.render(false); this.app.changed(this, "view");
  };
  Viewport.prototype.rotate = function () { this.set({ rot: (this.state.rot + 90) % 360 }); };

  // Display geometry of what is on screen, at full size (device pixels of the viewport).
  Viewport.prototype.geometry = function (req) {
    req = req || this.shown;
    if (!req || !this.stack) return null;
    var g = this.geom(req.index);
    return G.geometry(req.full, g[0], g[1], g[2] && g[3] ? [g[2], g[3]] : null);
  };
  // Client (CSS) coordinates → image coordinates [x = column, y = row], continuous.
  Viewport.prototype.toImage = function (clientX, clientY, geo) {
    geo = geo || this.geometry();
    if (!geo) return null;
    var r = this.el.getBoundingClientRect();
    var dx = (clientX - r.left) * geo.width / r.width, dy = (clientY - r.top) * geo.height / r.height;
    return G.apply(geo.inv, dx, dy);
  };
  // Geometry of the current state (ahead of the shown image while frames are on their way).
  Viewport.prototype.stateGeometry = function () {
    if (!this.shown) return null;
    var g = this.geom(this.index), full = Object.assign({}, this.shown.full, this.state);
    return G.geometry(full, g[0], g[1], g[2] && g[3] ? [g[2], g[3]] : null);
  };
  // Zoom by `factor` keeping the image point under (clientX, clientY) where it is.
  Viewport.prototype.zoomAt = function (factor, clientX, clientY, interactive) {
    var before = this.toImage(clientX, clientY, this.stateGeometry());
    this.state.z = Math.min(64, Math.max(0.05, this.state.z * factor));
    var after = this.toImage(clientX, clientY, this.stateGeometry());
    if (before && after) { this.state.px += before[0] - after[0]; this.state.py += before[1] - after[1]; }
    this.render(interactive); this.app.changed(this, "view");
  };
  // Pan by a drag of (dx, dy) CSS pixels.
  Viewport.prototype.panBy = function (dx, dy, interactive) {
    var geo = this.stateGeometry();
    if (!geo) return;
    var r = this.el.getBoundingClientRect(), sx = geo.width / r.width, sy = geo.height / r.height;
    this.state.px -= geo.inv[0] * dx * sx + geo.inv[1] * dy * sy;
    this.state.py -= geo.inv[3] * dx * sx + geo.inv[4] * dy * sy;
    this.render(interactive); this.app.changed(this, "view");
  };

  // ---- overlays: corner values, orientation letters, scale bar, badges, annotations ----
  Viewport.prototype.draw = function () {
    if (!this.shown || !this.stack) return;
    var req = this.shown, geo = this.geometry(), g = this.geom(req.index), im = this.image(req.index);
    var r = this.el.getBoundingClientRect(), css = r.width ? geo.width / r.width : 1;
    var win = req.state.ww ? [req.state.wc, req.state.ww] : this.stack.window;
    var loc = im[5] !== null && im[5] !== undefined ? im[5] : (im[4] ? im[4][2] : null);
    this.value("image", (req.index + 1) + "/" + this.stack.images.length);
    this.value("slice", loc === null ? "" : loc.toFixed(2));
    this.value("ww", win ? fmt(win[1]) : this.app.text.auto);
    this.value("wc", win ? fmt(win[0]) : this.app.text.auto);
    this.value("zoom", Math.round(geo.scaleX / css * 100) + "%");
    var ori = G.orientation(geo.inv, g) || {};
    ["top", "bottom", "left", "right"].forEach(function (side) {
      this.el.querySelector(".ori-" + side).textContent = ori[side] || "";
    }, this);
    this.el.querySelector(".badge.lossy").hidden = req.state.fmt === "png";
    this.el.querySelector(".badge.keyed").hidden = !this.app.isKey(im[0], im[1]);
    var bar = this.el.querySelector(".vp-scrollbar");
    bar.hidden = this.stack.images.length < 2;
    bar.firstChild.style.top = (100 * req.index / Math.max(1, this.stack.images.length - 1)) + "%";
    this.svg.setAttribute("viewBox", "0 0 " + geo.width + " " + geo.height);
    this.svg.setAttribute("preserveAspectRatio", "none");
    global.PacsTools.draw(this, geo, css);
    if (global.PacsReference) global.PacsReference.draw(this, geo, css);
    if (global.PacsCursor) global.PacsCursor.draw(this, geo, css);
  };
  Viewport.prototype.value = function (key, text) {
    var el = this.corners.querySelector('[data-v="' + key + '"]');
    if (el) el.textContent = text;
    if (key === "slice" && el && el.parentNode) el.parentNode.hidden = !text;
  };
  function fmt(v) { return String(Math.round(v * 10) / 10); }

  // ---- the magnifier: a second, small frame at twice the magnification around the pointer ----
  Viewport.prototype.lens = function (clientX, clientY) {
    var lens = this.el.querySelector(".vp-lens"), geo = this.geometry();
    if (clientX === null || !geo) { lens.hidden = true; this.lensLoader.abort(); return; }
    var p = this.toImage(clientX, clientY, geo), g = this.geom(this.shown.index), r = this.el.getBoundingClientRect();
    var dpr = Math.min(global.devicePixelRatio || 1, 2), side = Math.round(Math.min(220, r.width / 2.5));
    var st = Object.assign({}, this.shown.full, { w: Math.round(side * dpr), h: Math.round(side * dpr),
                                                  z: 1, px: 0, py: 0, fmt: "jpeg", q: 85 });
    var base = G.geometry(st, g[0], g[1], g[2] && g[3] ? [g[2], g[3]] : null).scaleX;
    st.z = 2 * geo.scaleX / base * (st.w / geo.width) * (r.width / side);
    st.px = p[0] - g[1] / 2; st.py = p[1] - g[0] / 2;
    G.tidy(st);
    lens.style.width = lens.style.height = side + "px";
    lens.style.left = (clientX - r.left - side / 2) + "px";
    lens.style.top = (clientY - r.top - side / 2) + "px";
    lens.hidden = false;
    this.lensLoader.want({ url: this.url(this.shown.index, st) });
  };
  Viewport.prototype.onLens = function (req, ok) {
    var lens = this.el.querySelector(".vp-lens");
    if (ok && !lens.hidden) lens.firstChild.src = req.url;
  };

  global.PacsViewport = Viewport;
})(window);
