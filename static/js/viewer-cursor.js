// The 3-D cursor (定位): a click (or drag) with the cursor tool picks the patient point under the
// pointer; every viewport whose series shares the Frame of Reference scrolls to its image nearest
// that point and marks where the point falls on it. The point also goes to other windows (the
// second monitor, MPR pages) on the BroadcastChannel "pacs-cursor", and theirs come here.
//
// Patient coordinates (LPS mm) of image point (x = column, y = row, continuous, pixel (i, j)
// covering [i, i+1) × [j, j+1)) follow PS3.3 C.7.6.2.1.1: Image Position (Patient) is the centre
// of the first pixel, so P = IPP + (x − ½)·Δcolumn·row cosines + (y − ½)·Δrow·column cosines.
// No request is made: the stacks already carry positions, orientations and spacings.
(function (global) {
  "use strict";
  var G = global.PacsGeom, NS = "http://www.w3.org/2000/svg", CHANNEL = "pacs-cursor";
  var SINGLE_MM = 2;  // how far off a lone image's plane a point may lie (no spacing to go by)

  function dot(a, b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
  function sub(a, b) { return [a[0] - b[0], a[1] - b[1], a[2] - b[2]]; }

  // geom: [rows, columns, row spacing, column spacing, row cosines(3), column cosines(3)].
  function usable(geom, pos) {
    return pos && geom && geom[2] && geom[3] && geom.slice(4, 10).every(function (v) { return v !== null; });
  }

  // Image point → patient point, or null without the geometry.
  function toPatient(geom, pos, x, y) {
    if (!usable(geom, pos)) return null;
    var dc = (x - 0.5) * geom[3], dr = (y - 0.5) * geom[2];
    return [0, 1, 2].map(function (k) { return pos[k] + dc * geom[4 + k] + dr * geom[7 + k]; });
  }

  // Patient point → [x, y, distance off the plane (mm)] on an image.
  function toImage(geom, pos, p) {
    if (!usable(geom, pos)) return null;
    var d = sub(p, pos), r = geom.slice(4, 7), c = geom.slice(7, 10), n = G.normal(geom);
    return [dot(d, r) / geom[3] + 0.5, dot(d, c) / geom[2] + 0.5, Math.abs(dot(d, n))];
  }

  // The spacing of a stack's images along its normal (the median gap), or null for one image.
  function spacing(stack) {
    if (stack.cursorSpacing !== undefined) return stack.cursorSpacing;
    var geom = stack.geoms[0], n = G.normal(geom), at = [];
    if (n) stack.images.forEach(function (im) { if (im[4]) at.push(dot(im[4], n)); });
    at.sort(function (a, b) { return a - b; });
    var gaps = [];
    for (var i = 1; i < at.length; i++) if (at[i] - at[i - 1] > 1e-3) gaps.push(at[i] - at[i - 1]);
    gaps.sort(function (a, b) { return a - b; });
    stack.cursorSpacing = gaps.length ? gaps[Math.floor(gaps.length / 2)] : null;
    return stack.cursorSpacing;
  }

  // Where `p` falls in `vp`'s stack: {index, x, y}, the image nearest along its normal; null when
  // the point lies outside the series by more than one slice spacing (in depth or in plane).
  function locate(vp, p) {
    var stack = vp.stack, best = null;
    stack.images.forEach(function (im, i) {
      var at = toImage(stack.geoms[im[3]], im[4], p);
      if (at && (!best || at[2] < best.off)) best = { index: i, x: at[0], y: at[1], off: at[2] };
    });
    if (!best) return null;
    var geom = stack.geoms[stack.images[best.index][3]], gap = spacing(stack) || SINGLE_MM;
    var outX = Math.max(0, -best.x, best.x - geom[1]) * geom[3];
    var outY = Math.max(0, -best.y, best.y - geom[0]) * geom[2];
    return best.off > gap || outX > gap || outY > gap ? null : best;
  }

  function install(app) {
    var channel = global.BroadcastChannel ? new BroadcastChannel(CHANNEL) : null;
    var windowId = Math.random().toString(36).slice(2) + Date.now().toString(36);
    var pending = null, posted = null;

    // Move the viewports of `study`'s Frame of Reference `frame` to `p` (all but `source`).
    function apply(study, frame, p, source) {
      app.viewports.forEach(function (w) {
        if (!w.stack || w.stack.study !== study || w.stack.forUid !== frame) return;
        if (w === source) return;
        var at = locate(w, p);
        if (!at) { if (w.cursor) { w.cursor = null; w.draw(); } return; }
        w.cursor = { point: p, index: at.index, series: w.stack.series, x: at.x, y: at.y };
        if (at.index === w.index) { w.draw(); return; }
        // A jump, not a step through the stack: one frame request in flight (latest wins), and
        // a full still once the pointer rests. Not goTo: sync and the monitor follow the user's
        // scrolling, not the cursor's moves (every window gets the point itself).
        w.dir = at.index > w.index ? 1 : -1;
        w.index = at.index;
        w.render(true);
      });
    }

    // The cursor tool at a pointer position in `vp`.
    app.cursorAt = function (vp, clientX, clientY) {
      if (!vp.stack || !vp.shown) return;
      var i = vp.shown.index, im = vp.image(i), xy = vp.toImage(clientX, clientY);
      var p = xy && toPatient(vp.geom(i), im[4], xy[0], xy[1]);
      if (!p) { app.status(app.text.noCursor); return; }
      p = p.map(function (v) { return Math.round(v * 100) / 100; });
      vp.cursor = { point: p, index: i, series: vp.stack.series, x: xy[0], y: xy[1] };
      vp.draw();
      if (vp.stack.forUid) {
        apply(vp.stack.study, vp.stack.forUid, p, vp);
        post({ type: "cursor", study: vp.stack.study, "for": vp.stack.forUid, point: p, from: windowId });
      }
      app.cursorPoint = p;
    };

    // At most one message per animation frame while dragging; the last point always goes.
    function post(message) {
      if (!channel) return;
      pending = message;
      if (posted) return;
      posted = global.requestAnimationFrame(function () {
        posted = null;
        if (pending) channel.postMessage(pending);
        pending = null;
      });
    }

    if (channel) channel.onmessage = function (e) {
      var m = e.data || {};
      if (m.type !== "cursor" || m.from === windowId || !m.study || !m["for"]) return;
      if (!Array.isArray(m.point) || m.point.length !== 3 || !m.point.every(isFinite)) return;
      app.cursorPoint = m.point.map(Number);
      apply(m.study, m["for"], app.cursorPoint, null);
    };

    // A viewport the user (or sync, or cine) scrolls leaves its marked slice: the marker goes.
    var scrolled = app.scrolled;
    app.scrolled = function (vp) {
      if (vp.cursor) vp.cursor = null;
      scrolled(vp);
    };
    app.cursorChannel = channel;
    app.cursorWindow = windowId;
  }

  // Called by Viewport.draw: the marker, where the point projects on the shown image.
  function draw(vp, geo, css) {
    var c = vp.cursor;
    if (!c) return;
    if (c.series !== vp.stack.series || c.index !== vp.index) { vp.cursor = null; return; }
    if (vp.shown.index !== c.index) return;  // the marked image is on its way
    var d = G.apply(geo.fwd, c.x, c.y), s = 12 * css, gap = 3 * css;
    var g = document.createElementNS(NS, "g");
    g.setAttribute("class", "cursor3d");
    g.setAttribute("data-x", d[0]); g.setAttribute("data-y", d[1]);
    g.setAttribute("data-point", c.point.join(","));
    var cross = ["M", d[0] - s, d[1], "H", d[0] - gap, "M", d[0] + gap, d[1], "H", d[0] + s,
                 "M", d[0], d[1] - s, "V", d[1] - gap, "M", d[0], d[1] + gap, "V", d[1] + s].join(" ");
    ["halo", "mark"].forEach(function (cls) {  // a dark halo keeps it visible on bright tissue
      var path = document.createElementNS(NS, "path");
      path.setAttribute("d", cross); path.setAttribute("class", cls);
      g.appendChild(path);
    });
    vp.svg.appendChild(g);
  }

  global.PacsCursor = { install: install, draw: draw, toPatient: toPatient, toImage: toImage, locate: locate };
})(window);
