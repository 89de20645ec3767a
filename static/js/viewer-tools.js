// Measurement and annotation tools: the browser collects image-pixel points and draws SVG; the
// server computes every value from the original pixels (mm, mm², HU) and saves it.
//
// Shapes are drawn inside <g transform="matrix(...)"> with the view's image → display affine, so
// they follow zoom, pan, rotation and flips exactly; labels are drawn unrotated beside them.
(function (global) {
  "use strict";
  var G = global.PacsGeom, NS = "http://www.w3.org/2000/svg";
  var DRAG2 = { length: 1, arrow: 1, ellipse: 1, rectangle: 1, wlregion: 1 };
  var PAIRS = { cobb: 1, ctr: 1 };  // two dragged lines
  var TAPS = { angle: 3, probe: 1, text: 1 };
  var TOOLS = ["length", "polyline", "angle", "cobb", "ellipse", "rectangle", "freehand", "probe",
               "ctr", "arrow", "text", "wlregion"];

  var draft = null;  // {vp, tool, points: [[x, y]...], cursor: [x, y] | null, dragging}

  function el(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    for (var k in attrs) if (attrs.hasOwnProperty(k)) node.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(node);
    return node;
  }
  function pts(points) { return points.map(function (p) { return p[0] + "," + p[1]; }).join(" "); }

  // ---- shapes in image coordinates ----
  function shape(g, kind, p) {
    var line = function (a, b) { el("line", { x1: a[0], y1: a[1], x2: b[0], y2: b[1] }, g); };
    if (kind === "length" || kind === "arrow") {
      if (p.length > 1) line(p[0], p[1]);
    } else if (kind === "polyline" || kind === "angle") {
      el("polyline", { points: pts(p), fill: "none" }, g);
    } else if (kind === "freehand") {
      el("polygon", { points: pts(p), fill: "none" }, g);
    } else if (kind === "cobb" || kind === "ctr") {
      if (p.length > 1) line(p[0], p[1]);
      if (p.length > 3) line(p[2], p[3]);
    } else if (kind === "ellipse" && p.length > 1) {
      el("ellipse", { cx: (p[0][0] + p[1][0]) / 2, cy: (p[0][1] + p[1][1]) / 2,
                      rx: Math.abs(p[1][0] - p[0][0]) / 2, ry: Math.abs(p[1][1] - p[0][1]) / 2, fill: "none" }, g);
    } else if ((kind === "rectangle" || kind === "wlregion") && p.length > 1) {
      el("rect", { x: Math.min(p[0][0], p[1][0]), y: Math.min(p[0][1], p[1][1]),
                   width: Math.abs(p[1][0] - p[0][0]), height: Math.abs(p[1][1] - p[0][1]), fill: "none" }, g);
    }
  }
  // Length ticks, arrow heads and probe crosses are drawn in display space so they keep their size.
  function marks(svg, kind, dp, css) {
    var s = 9 * css;
    if (!dp.length) return;
    if (kind === "length" && dp.length > 1) {  // end ticks, perpendicular to the line
      var d = "";
      [[dp[0], dp[1]], [dp[1], dp[0]]].forEach(function (ab) {
        var a0 = ab[0], b0 = ab[1], dx = b0[0] - a0[0], dy = b0[1] - a0[1], n = Math.sqrt(dx * dx + dy * dy) || 1, t = s * 0.6;
        d += "M" + (a0[0] - dy / n * t) + "," + (a0[1] + dx / n * t) + "L" + (a0[0] + dy / n * t) + "," + (a0[1] - dx / n * t);
      });
      el("path", { d: d, "class": "head" }, svg);
    } else if (kind === "arrow" && dp.length > 1) {
      var a = dp[1], b = dp[0], ang = Math.atan2(a[1] - b[1], a[0] - b[0]);
      el("path", { d: "M" + a[0] + "," + a[1] + " L" + (a[0] - s * Math.cos(ang - 0.45)) + "," + (a[1] - s * Math.sin(ang - 0.45)) +
                   " M" + a[0] + "," + a[1] + " L" + (a[0] - s * Math.cos(ang + 0.45)) + "," + (a[1] - s * Math.sin(ang + 0.45)),
                   "class": "head" }, svg);
    } else if (kind === "probe" || kind === "text") {
      var p = dp[0];
      el("path", { d: "M" + (p[0] - s) + "," + p[1] + "h" + (2 * s) + "M" + p[0] + "," + (p[1] - s) + "v" + (2 * s),
                   "class": "head" }, svg);
    }
  }

  // ---- labels ----
  function n1(v) { return v === null || v === undefined ? "—" : (Math.round(v * 10) / 10).toFixed(1); }
  function label(a, T) {
    var r = a.result || {}, unit = r.unit === "px" ? T.pixels : "mm", vu = r.valueUnit ? " " + r.valueUnit : "";
    switch (a.kind) {
      case "length": case "polyline": return [n1(r.length) + " " + unit];
      case "angle": return [n1(r.angle) + "°"];
      case "cobb": return [T.cobb + " " + n1(r.angle) + "°"];
      case "ctr": return [T.ctr + " " + (r.ratio === undefined ? "—" : r.ratio.toFixed(2)),
                          T.heart + " " + n1(r.heart) + " / " + T.thorax + " " + n1(r.thorax) + " " + unit];
      case "ellipse": case "rectangle": case "freehand":
        return [T.area + " " + n1(r.area) + " " + unit + "²",
                T.mean + " " + n1(r.mean) + vu + "  " + T.sd + " " + n1(r.sd),
                T.min + " " + n1(r.min) + "  " + T.max + " " + n1(r.max)];
      case "probe": return [n1(r.value) + vu, r.size + "×" + r.size + " " + T.mean + " " + n1(r.mean) +
                            " [" + n1(r.min) + ", " + n1(r.max) + "]"];
      case "text": case "arrow": return a.text ? [a.text] : [];
    }
    return [];
  }
  function text(svg, lines, at, css, cls) {
    if (!lines.length) return;
    var size = 13 * css, t = el("text", { x: at[0], y: at[1], "font-size": size, "class": cls || "label" }, svg);
    lines.forEach(function (line, i) {
      var span = el("tspan", { x: at[0], dy: i ? size * 1.25 : 0 }, t);
      span.textContent = line;
    });
  }
  function anchor(dp, css) {  // right of the rightmost point, clamped inside by CSS later
    var best = dp[0];
    dp.forEach(function (p) { if (p[0] > best[0]) best = p; });
    return [best[0] + 8 * css, best[1] - 4 * css];
  }

  function drawOne(vp, svg, geo, css, kind, points, lines, cls) {
    var f = geo.fwd, g = el("g", { transform: "matrix(" + [f[0], f[3], f[1], f[4], f[2], f[5]].join(" ") + ")",
                                   "class": cls }, svg);
    shape(g, kind, points);
    var dp = points.map(function (p) { return G.apply(f, p[0], p[1]); });
    marks(svg, kind, dp, css);
    if (dp.length) text(svg, lines, anchor(dp, css), css, "label " + cls + "-label");
  }

  // Redraw a viewport's SVG: saved annotations of the shown frame, the draft, the scale bar.
  function draw(vp, geo, css) {
    var svg = vp.svg;
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var im = vp.image(vp.shown.index), T = vp.app.text;
    vp.app.annotations.forEach(function (a) {
      if (a.sop === im[0] && a.frame === im[1]) drawOne(vp, svg, geo, css, a.kind, a.points, label(a, T), "ann");
    });
    if (draft && draft.vp === vp) {
      var p = draft.points.concat(draft.cursor ? [draft.cursor] : []);
      drawOne(vp, svg, geo, css, draft.tool === "wlregion" ? "rectangle" : draft.tool, p, [], "draft");
    }
    scaleBar(vp, svg, geo, css);
  }

  function scaleBar(vp, svg, geo, css) {
    var g = vp.geom(vp.shown.index), box = vp.el.getBoundingClientRect();
    if (!g[3] || box.width < 360 || box.height < 240) return;  // small cells: the corners need the room
    var bar = G.scaleBar(g[3] / geo.scaleX, geo.width / 4);
    if (!bar) return;
    var x = geo.width / 2 - bar.px / 2, y = geo.height - 26 * css, h = 5 * css;
    el("path", { d: "M" + x + "," + (y - h) + "v" + h + "h" + bar.px + "v" + (-h), "class": "scale" }, svg);
    text(svg, [bar.mm >= 10 ? bar.mm / 10 + " cm" : bar.mm + " mm"], [geo.width / 2, y - h - 4 * css], css, "scale-label");
  }

  // ---- drawing with the pointer ----
  function start(vp, tool, e) {
    var p = vp.toImage(e.clientX, e.clientY);
    if (!p) return;
    if (!draft || draft.vp !== vp || draft.tool !== tool) draft = { vp: vp, tool: tool, points: [], cursor: null };
    if (DRAG2[tool] || PAIRS[tool] || tool === "freehand") {
      draft.points.push(p); draft.cursor = p; draft.dragging = true;
      draft.downAt = [e.clientX, e.clientY];
    }
    vp.draw();
  }
  function move(vp, e) {
    if (!draft || draft.vp !== vp) return;
    var p = vp.toImage(e.clientX, e.clientY);
    if (!p) return;
    if (draft.tool === "freehand" && draft.dragging) {
      var last = draft.points[draft.points.length - 1];
      if (Math.abs(p[0] - last[0]) + Math.abs(p[1] - last[1]) > 1) draft.points.push(p);
    } else draft.cursor = p;
    vp.draw();
  }
  function end(vp, tool, e) {
    if (!draft || draft.vp !== vp) { if (TAPS[tool] || tool === "polyline") draft = { vp: vp, tool: tool, points: [] }; else return; }
    var p = vp.toImage(e.clientX, e.clientY), d = draft;
    if (d.dragging) {
      d.dragging = false;
      var moved = Math.abs(e.clientX - d.downAt[0]) + Math.abs(e.clientY - d.downAt[1]);
      if (tool === "freehand") return d.points.length >= 3 ? finish(vp) : cancel();
      if (moved < 4) { d.points.pop(); d.cursor = null; vp.draw(); return; }
      if (tool === "ctr") p = level(vp, d.points[d.points.length - 1], p);
      d.points.push(p); d.cursor = null;
      if (DRAG2[tool] || d.points.length >= 4) return finish(vp);
      vp.draw();
      return;
    }
    if (tool === "polyline") {
      var last = d.points[d.points.length - 1];
      if (last && d.points.length >= 2 && Math.abs(last[0] - p[0]) + Math.abs(last[1] - p[1]) < 2) return finish(vp);
      d.points.push(p);
      if (e.detail >= 2 && d.points.length >= 2) return finish(vp);
      vp.draw();
      return;
    }
    if (TAPS[tool]) {
      d.points.push(p);
      if (d.points.length >= TAPS[tool]) return finish(vp);
      vp.draw();
    }
  }
  // The cardiothoracic ratio compares horizontal widths: keep the end on the start's screen row.
  function level(vp, start, p) {
    var geo = vp.geometry(), a = G.apply(geo.fwd, start[0], start[1]), b = G.apply(geo.fwd, p[0], p[1]);
    return G.apply(geo.inv, b[0], a[1]);
  }

  function cancel() {
    var vp = draft && draft.vp;
    draft = null;
    if (vp) vp.draw();
  }
  function finish(vp) {
    var d = draft, app = vp.app, im = vp.image(vp.shown.index), body;
    draft = null;
    body = { sop: im[0], frame: im[1], kind: d.tool, points: d.points };
    if (d.tool === "polyline" && d.points.length > 2) {  // a double click adds the last point twice
      var a = d.points[d.points.length - 1], b = d.points[d.points.length - 2];
      if (Math.abs(a[0] - b[0]) + Math.abs(a[1] - b[1]) < 2) d.points.pop();
    }
    if (d.tool === "text") {
      var words = global.prompt(app.text.enterText, "");
      if (!words) { vp.draw(); return; }
      body.text = words.slice(0, 200);
    }
    if (d.tool === "wlregion") {
      body.kind = "rectangle";
      app.post(app.studyUrl(vp.stack.study, "region-window"), body).then(function (w) { vp.setWindow(w.center, w.width, false); })
        .catch(function (err) { app.status(err.message); vp.draw(); });
      return;
    }
    vp.draw();
    app.post(app.studyUrl(vp.stack.study, "annotations"), body).then(function (saved) { app.addAnnotation(saved); })
      .catch(function (err) { app.status(app.text.saveFailed + " " + err.message); vp.draw(); });
  }
  function finishPolyline() { if (draft && draft.tool === "polyline" && draft.points.length >= 2) finish(draft.vp); }

  global.PacsTools = { TOOLS: TOOLS, isTool: function (t) { return TOOLS.indexOf(t) >= 0; },
                       draw: draw, start: start, move: move, end: end, cancel: cancel,
                       finishPolyline: finishPolyline, label: label,
                       drafting: function () { return !!draft; } };
})(window);
