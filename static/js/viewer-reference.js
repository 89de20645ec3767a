// Reference lines (定位线): where the images shown in the other viewports cut this one.
//
// The server computes the segments (app/services/viewer_planes.py, from Image Position and
// Orientation (Patient) and Pixel Spacing); this file asks for them, keeps them, and draws them
// over each viewport as SVG. Only viewports of the same study and Frame of Reference whose planes
// are not parallel take part. Lines are asked for a window of images around the other viewport's
// position, so scrolling it usually needs no request; at most one request per pair is in flight.
(function (global) {
  "use strict";
  var G = global.PacsGeom;
  var WINDOW = 16;  // images on each side of the other viewport's current one

  function install(app) {
    var lines = {};    // target SOP → { source SOP: [x0, y0, x1, y1] | null }
    var flights = {};  // target SOP + "|" + source series → true while a request is out

    function parallel(a, b) {
      var n = G.normal(a), m = G.normal(b);
      if (!n || !m) return true;
      return Math.abs(n[0] * m[0] + n[1] * m[1] + n[2] * m[2]) >= Math.cos(5 * Math.PI / 180);
    }

    // The viewports whose current image may cut `vp`'s.
    function sources(vp) {
      var s = vp.stack;
      if (!s || !s.forUid || !vp.shown) return [];
      return app.viewports.filter(function (w) {
        return w !== vp && w.stack && w.shown && w.stack.study === s.study && w.stack.forUid === s.forUid &&
          !parallel(vp.geom(vp.shown.index), w.geom(w.shown.index));
      });
    }

    function fetchAround(vp, w, target) {
      var key = target + "|" + w.stack.series;
      if (flights[key]) return;
      var known = lines[target] || (lines[target] = {}), wanted = [];
      var n = w.stack.images.length, at = w.shown.index;
      for (var k = 0; k <= WINDOW && wanted.length < 2 * WINDOW + 1; k++) {
        [at + k * w.dir, at - k * w.dir].forEach(function (i) {
          if (i < 0 || i >= n) return;
          var sop = w.stack.images[i][0];
          if (!(sop in known) && wanted.indexOf(sop) < 0) wanted.push(sop);
        });
      }
      if (!wanted.length) return;
      flights[key] = true;
      var query = "?target=" + encodeURIComponent(target) +
        wanted.map(function (sop) { return "&source=" + encodeURIComponent(sop); }).join("");
      app.get(app.studyUrl(vp.stack.study, "reference-lines" + query)).then(function (body) {
        wanted.forEach(function (sop) { known[sop] = body.lines[sop] || null; });
        delete flights[key];
        vp.draw();
      }, function () {  // no line rather than asking again on every redraw
        wanted.forEach(function (sop) { if (!(sop in known)) known[sop] = null; });
        delete flights[key];
      });
    }

    // Called by Viewport.draw after the annotations: add the lines to `vp`'s SVG.
    function draw(vp, geo, css) {
      var target = vp.image(vp.shown.index)[0], known = lines[target] || {};
      sources(vp).forEach(function (w) {
        var sop = w.image(w.shown.index)[0];
        if (!(sop in known)) { fetchAround(vp, w, target); return; }
        var seg = known[sop];
        if (!seg) return;
        var a = G.apply(geo.fwd, seg[0], seg[1]), b = G.apply(geo.fwd, seg[2], seg[3]);
        var line = document.createElementNS("http://www.w3.org/2000/svg", "line");
        line.setAttribute("x1", a[0]); line.setAttribute("y1", a[1]);
        line.setAttribute("x2", b[0]); line.setAttribute("y2", b[1]);
        line.setAttribute("class", "refline" + (w === app.active ? " from-active" : ""));
        line.setAttribute("data-series", w.stack.series);
        line.setAttribute("data-source", sop);
        vp.svg.appendChild(line);
      });
    }

    // A new image on screen in one viewport moves its line in all the others.
    var shown = app.shown;
    app.shown = function (vp) {
      shown(vp);
      app.viewports.forEach(function (w) { if (w !== vp && w.shown) w.draw(); });
    };
    // The active viewport's line is drawn solid: redraw when another becomes active.
    var activate = app.activate;
    app.activate = function (vp) {
      var before = app.active;
      activate(vp);
      if (before !== app.active) app.viewports.forEach(function (w) { if (w.shown) w.draw(); });
    };
    app.referenceLines = lines;  // for tests and the console
    return { draw: draw };
  }

  global.PacsReference = {
    install: function (app) { global.PacsReference.draw = install(app).draw; },
    draw: function () {}
  };
})(window);
