// Synchronised viewports and cine.
//
// Sync (a toolbar toggle): scrolling one viewport moves the others of the same Frame of Reference
// to their image nearest the same patient position along their slice normal (Image Position
// (Patient) · normal, PS3.3 C.7.6.2.1.1); W/L follows between viewports of one modality, zoom
// and pan between all. Cine steps through a stack at the chosen rate and direction; as every
// frame goes through the viewport's latest-wins loader (at most three steps in flight), a slow
// link drops frames, never queues.
(function (global) {
  "use strict";
  var G = global.PacsGeom;

  function install(app) {
    var syncing = false;

    // ---- synchronised viewports ----
    function dot(a, b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

    // The image of `vp` nearest to patient position `p` along its slice normal.
    function nearest(vp, p) {
      var n = G.normal(vp.geom(0)), best = -1, gap = Infinity;
      if (!n) return -1;
      var target = dot(p, n);
      vp.stack.images.forEach(function (im, i) {
        if (!im[4]) return;
        var d = Math.abs(dot(im[4], n) - target);
        if (d < gap) { gap = d; best = i; }
      });
      return best;
    }

    app.nearest = nearest;  // also used by the second monitor (viewer-monitor.js)

    app.scrolled = function (vp) {
      if (!app.sync || syncing) return;
      var pos = vp.image()[4], frame = vp.stack.forUid;
      if (!pos || !frame) return;
      syncing = true;
      app.viewports.forEach(function (w) {
        if (w === vp || !w.stack || w.stack.forUid !== frame) return;
        var i = nearest(w, pos);
        if (i >= 0) w.goTo(i, true);
      });
      syncing = false;
    };

    app.changed = function (vp, what) {
      if (vp === app.active) app.toolbarState();
      if (!app.sync || syncing) return;
      syncing = true;
      app.viewports.forEach(function (w) {
        if (w === vp || !w.stack) return;
        if (what === "wl" && w.stack.modality === vp.stack.modality) {
          w.state.wc = vp.state.wc; w.state.ww = vp.state.ww; w.render(true);
        } else if (what === "view") {
          w.state.z = vp.state.z; w.state.px = vp.state.px; w.state.py = vp.state.py; w.render(true);
        }
      });
      syncing = false;
    };

    // ---- cine ----
    app.play = function () {
      if (app.cine) { clearTimeout(app.cine.timer); app.cine = null; app.toolbarState(); return; }
      var vp = app.active;
      if (!vp || !vp.stack || vp.stack.images.length < 2) return;
      app.cine = { vp: vp, step: 1 };
      tick();
      app.toolbarState();
    };
    function tick() {
      var c = app.cine;
      if (!c) return;
      var fps = +(document.querySelector('[data-cine="fps"]') || { value: 15 }).value;
      var mode = +(document.querySelector('[data-cine="dir"]') || { value: 1 }).value;
      var vp = c.vp, n = vp.stack.images.length, i = vp.index;
      if (mode === 0) {
        if (i + c.step < 0 || i + c.step >= n) c.step = -c.step;
        i += c.step;
      } else i = (i + mode + n) % n;
      vp.dir = mode === 0 ? c.step : mode;
      vp.index = i; vp.render(false, true); app.scrolled(vp);  // steps of the stack: pipelined
      c.timer = setTimeout(tick, 1000 / fps);
    }
  }

  global.PacsSync = { install: install };
})(window);
