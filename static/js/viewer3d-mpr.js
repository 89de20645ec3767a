// MPR view: three planes through one crosshair. Click or drag moves the crosshair (every plane
// follows), the wheel steps the plane under the pointer along its normal, the oblique tool turns the
// other planes about this one's axis, right-drag is W/L, and lengths are measured in patient mm.
// The farm renders each plane and returns its geometry (pixel ↔ patient mapping, where the other
// planes cut it); this script only does the small linear algebra to map clicks to patient points.
(function (V) {
  "use strict";
  var form = document.querySelector(".v3d-tools");
  var DEFAULTS = { o: "axial", rx: 0, ry: 0, rz: 0, st: 0, sp: "avg", z: 1, px: 0, py: 0 };
  var AXIS = { axial: "rz", coronal: "ry", sagittal: "rx" };  // rotation about each view's normal
  var params = new URLSearchParams(location.search);
  var S = { cx: null, cy: null, cz: null, rx: 0, ry: 0, rz: 0, st: +(params.get("st") || 0),
            sp: params.get("sp") || "mip", wc: null, ww: null };
  var tool = "cross", views = [], path = [];  // path: patient points of a curved MPR

  function field(key) { return form.querySelector('[data-key="' + key + '"]'); }

  function View(el) {
    var self = this;
    this.el = el; this.plane = el.dataset.plane;
    this.img = el.querySelector(".v3d-img"); this.svg = el.querySelector(".v3d-svg");
    this.z = 1; this.px = 0; this.py = 0; this.geom = null; this.seq = 0; this.measure = null;
    this.loader = new V.Loader(this.img, function (ok, url) { if (!ok) V.explain(url); });
    this.size = V.sizeOf(el, 1024);
  }
  View.prototype.query = function (preview) {
    var q = { o: this.plane, rx: S.rx, ry: S.ry, rz: S.rz, st: S.st, sp: S.st ? S.sp : "avg",
              wc: S.wc, ww: S.ww, z: this.z, px: this.px, py: this.py, w: this.size.w, h: this.size.h };
    if (S.cx !== null) { q.cx = S.cx; q.cy = S.cy; q.cz = S.cz; }
    if (preview) q.q = 60;
    return q;
  };
  View.prototype.show = function (preview) {
    var self = this, q = this.query(preview), seq = ++this.seq;
    this.loader.want(V.url("mpr", q, DEFAULTS));
    if (preview && this.geom) { this.draw(); }
    delete q.q;
    fetch(V.url("mpr_geometry", q, DEFAULTS), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (g) {
        if (!g || seq !== self.seq) return;
        self.geom = g;
        if (S.cx === null) { S.cx = g.crosshair[0]; S.cy = g.crosshair[1]; S.cz = g.crosshair[2]; }
        self.draw();
      }).catch(function () {});
  };
  // Output pixel (x, y) of a pointer event.
  View.prototype.at = function (ev) {
    var r = this.img.getBoundingClientRect();
    return [(ev.clientX - r.left) * this.size.w / r.width, (ev.clientY - r.top) * this.size.h / r.height];
  };
  // Patient mm (LPS) under output pixel (x, y): viewport affine, then the plane's mapping.
  View.prototype.pick = function (x, y) {
    var g = this.geom, m = g.display_to_image;
    var u = m[0][0] * x + m[0][1] * y + m[0][2], v = m[1][0] * x + m[1][1] * y + m[1][2];
    var col = u - 0.5, row = v - 0.5;
    return [0, 1, 2].map(function (i) {
      return g.origin[i] + col * g.spacing[1] * g.row_axis[i] + row * g.spacing[0] * g.col_axis[i];
    });
  };
  View.prototype.toDisplay = function (row, col) {
    var m = this.geom.image_to_display, u = col + 0.5, v = row + 0.5;
    return [m[0][0] * u + m[0][1] * v + m[0][2], m[1][0] * u + m[1][1] * v + m[1][2]];
  };
  // Display point of a patient point, and whether it lies within a voxel of this plane.
  View.prototype.project = function (p) {
    var g = this.geom, d = [0, 1, 2].map(function (i) { return p[i] - g.origin[i]; });
    function dot(a) { return d[0] * a[0] + d[1] * a[1] + d[2] * a[2]; }
    var at = this.toDisplay(dot(g.col_axis) / g.spacing[0], dot(g.row_axis) / g.spacing[1]);
    at.push(Math.abs(dot(g.normal)) <= Math.max.apply(null, g.volume.spacing));
    return at;
  };
  View.prototype.draw = function () {
    var g = this.geom, self = this, parts = [];
    if (!g) return;
    this.svg.setAttribute("viewBox", "0 0 " + this.size.w + " " + this.size.h);
    parts.push('<defs><marker id="mpr-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8"' +
               ' markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#ffd23f"/></marker></defs>');
    Object.keys(g.lines).forEach(function (name) {
      var line = g.lines[name];
      if (!line) return;
      var a = self.toDisplay(line.from[0], line.from[1]), b = self.toDisplay(line.to[0], line.to[1]);
      parts.push('<line class="xh xh-' + name + '" x1="' + a[0] + '" y1="' + a[1] + '" x2="' + b[0] +
                 '" y2="' + b[1] + '"/>');
    });
    if (path.length) {
      var pts = path.map(function (p) { return self.project(p); });
      parts.push('<polyline class="xh-path" points="' + pts.map(function (q) { return q[0] + "," + q[1]; }).join(" ") + '"/>');
      pts.forEach(function (q) {
        parts.push('<circle class="xh-path-point' + (q[2] ? "" : " far") + '" cx="' + q[0] + '" cy="' + q[1] + '" r="4"/>');
      });
    }
    var c = this.toDisplay(g.crosshair_pixel[0], g.crosshair_pixel[1]);
    parts.push('<circle class="xh-point" cx="' + c[0] + '" cy="' + c[1] + '" r="6"/>');
    if (this.measure && this.measure.query === g.query && this.measure.shape === "polygon") {
      var poly = this.measure.display, top = poly.reduce(function (m, q) { return q[1] < m[1] ? q : m; }, poly[0]);
      parts.push('<g class="mpr-measure"><polygon points="' + poly.map(function (q) { return q.join(","); }).join(" ") +
                 '"/><text x="' + (top[0] + 6) + '" y="' + (top[1] - 6) + '">' + this.measure.label + "</text></g>");
    } else if (this.measure && this.measure.query === g.query && this.measure.shape) {
      var r = this.measure, a0 = r.display[0], a1 = r.display[1];
      var x0 = Math.min(a0[0], a1[0]), y0 = Math.min(a0[1], a1[1]), w = Math.abs(a1[0] - a0[0]), h = Math.abs(a1[1] - a0[1]);
      parts.push('<g class="mpr-measure">' + (r.shape === "ellipse"
        ? '<ellipse cx="' + (x0 + w / 2) + '" cy="' + (y0 + h / 2) + '" rx="' + w / 2 + '" ry="' + h / 2 + '"/>'
        : '<rect x="' + x0 + '" y="' + y0 + '" width="' + w + '" height="' + h + '"/>') +
        '<text x="' + (x0 + w + 6) + '" y="' + (y0 + 12) + '">' + r.label + "</text></g>");
    } else if (this.measure && this.measure.query === g.query) {
      var m = this.measure, p = m.display, last = p[p.length - 1], lines = [[]];
      p.forEach(function (q, i) {  // a Cobb angle is two separate lines
        lines[lines.length - 1].push(q);
        if ((m.gaps || []).indexOf(i) >= 0) lines.push([]);
      });
      parts.push('<g class="mpr-measure">' + lines.map(function (l) {
        return '<polyline' + (m.arrow ? ' marker-end="url(#mpr-arrow)"' : "") + ' points="' +
          l.map(function (q) { return q.join(","); }).join(" ") + '"/>';
      }).join("") + '<text x="' + (last[0] + 6) + '" y="' + (last[1] - 6) + '">' + m.label + "</text></g>");
    }
    parts.push(this.drawSaved ? this.drawSaved() : "");
    this.svg.innerHTML = parts.join("");
    var slab = this.el.querySelector('[data-v="slab"]');
    if (slab) slab.textContent = g.thickness ? g.thickness + " mm " + g.mode.toUpperCase() : "";
    var info = this.el.querySelector('[data-v="info"]');
    if (info) info.textContent = g.crosshair.map(function (v) { return v.toFixed(1); }).join(", ") + " mm";
  };

  // Point-by-point tools, measured in patient space: angle (arm, vertex, arm), Cobb angle (two
  // lines, four clicks), polyline (clicks, double-click to finish).
  var NEEDS = { angle: 3, cobb: 4, ctr: 4, polyline: Infinity };
  var multi = null;
  function sub(a, b) { return [a[0] - b[0], a[1] - b[1], a[2] - b[2]]; }
  function len(u) { return Math.sqrt(u[0] * u[0] + u[1] * u[1] + u[2] * u[2]); }
  function degreesBetween(u, w) {
    var n = len(u) * len(w);
    return n ? Math.acos(Math.max(-1, Math.min(1, (u[0] * w[0] + u[1] * w[1] + u[2] * w[2]) / n))) * 180 / Math.PI : 0;
  }
  function multiClick(view, at, kind) {
    if (!multi || multi.view !== view || multi.kind !== kind || multi.done) {
      multi = { view: view, kind: kind, points: [], display: [], done: false };
    }
    var last = multi.display[multi.display.length - 1];
    if (last && Math.abs(last[0] - at[0]) + Math.abs(last[1] - at[1]) < 3) return;  // a double-click's 2nd
    multi.points.push(view.pick(at[0], at[1])); multi.display.push(at);
    var p = multi.points, label = "";
    if (kind === "angle" && p.length === 3) label = degreesBetween(sub(p[0], p[1]), sub(p[2], p[1])).toFixed(1) + "°";
    if (kind === "cobb" && p.length === 4) {
      var a = degreesBetween(sub(p[1], p[0]), sub(p[3], p[2]));
      label = Math.min(a, 180 - a).toFixed(1) + "°";
    }
    if (kind === "ctr" && p.length === 4) {  // heart width, then thorax width
      var thorax = len(sub(p[3], p[2]));
      label = thorax ? V.data.text.ctr + " " + (len(sub(p[1], p[0])) / thorax).toFixed(2) : "";
    }
    if (kind === "polyline" && p.length > 1) {
      var total = 0;
      for (var i = 1; i < p.length; i++) total += len(sub(p[i], p[i - 1]));
      label = total.toFixed(1) + " mm";
    }
    if (p.length >= NEEDS[kind]) { multi.done = true; keep(kind, p.slice(), label); }
    view.measure = { query: view.geom.query, display: multi.display.slice(), label: label,
                     gaps: kind === "cobb" || kind === "ctr" ? [1] : [] };
    view.draw();
    if (label) V.status(kind === "ctr" ? label : V.data.text[kind] + " " + label);
  }

  // ---- saved measurements: kept as patient points, drawn on any plane that passes through them ----
  var saved = [], csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  function keep(kind, points, label) {
    fetch(V.data.measurements, { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify({ kind: kind, points: points, label: label }) })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r); })
      .then(function (row) {
        saved.push({ id: row.id, kind: kind, points: points, label: label });
        views.forEach(function (v) { v.draw(); });
      })
      .catch(function () { V.status(V.data.text.saveFailed); });
  }
  fetch(V.data.measurements, { credentials: "same-origin" })
    .then(function (r) { return r.ok ? r.json() : { measurements: [] }; })
    .then(function (body) { saved = body.measurements; views.forEach(function (v) { v.draw(); }); });
  View.prototype.drawSaved = function () {
    var self = this;
    return saved.map(function (m) {
      var pts = m.points.map(function (p) { return self.project(p); });
      if (!pts.every(function (q) { return q[2]; })) return "";  // not on this plane
      var last = pts[pts.length - 1], shape;
      if (m.kind === "text") {
        shape = "";
      } else if (m.kind === "ellipse" || m.kind === "rectangle") {
        var x0 = Math.min(pts[0][0], pts[1][0]), y0 = Math.min(pts[0][1], pts[1][1]);
        var w = Math.abs(pts[1][0] - pts[0][0]), h = Math.abs(pts[1][1] - pts[0][1]);
        shape = m.kind === "ellipse" ? '<ellipse cx="' + (x0 + w / 2) + '" cy="' + (y0 + h / 2) + '" rx="' + w / 2 + '" ry="' + h / 2 + '"/>'
          : '<rect x="' + x0 + '" y="' + y0 + '" width="' + w + '" height="' + h + '"/>';
      } else {
        var tag = m.kind === "freehand" ? "polygon" : "polyline";
        var runs = m.kind === "cobb" || m.kind === "ctr" ? [pts.slice(0, 2), pts.slice(2)] : [pts];
        shape = runs.map(function (run) {
          return "<" + tag + (m.kind === "arrow" ? ' marker-end="url(#mpr-arrow)"' : "") + ' points="' +
            run.map(function (q) { return q[0] + "," + q[1]; }).join(" ") + '"/>';
        }).join("");
      }
      return '<g class="mpr-measure mpr-saved">' + shape + '<text x="' + (last[0] + 6) + '" y="' + (last[1] - 6) + '">' +
        m.label.replace(/[<&]/g, "") + "</text></g>";
    }).join("");
  };

  // Region statistics, computed by the farm from the plane's values (not from the picture).
  function roi(view, points) {
    var shape = view.dragTool === "freehand" ? "polygon" : view.dragTool;
    var q = Object.assign(view.query(false), { roi: shape, pts: [].concat.apply([], points)
      .map(function (v) { return v.toFixed(1); }).join(",") });
    var shown = view.geom.query;
    fetch(V.url("mpr_roi", q, DEFAULTS), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r); })
      .then(function (s) {
        if (!view.measure || view.geom.query !== shown) return;
        var unit = s.modality === "CT" ? " HU" : "";
        if (view.wlRegion) {  // W/L from the region: its minimum to its maximum
          view.wlRegion = false; view.measure = null;
          if (s.pixels && s.max > s.min) { S.wc = round((s.min + s.max) / 2); S.ww = round(s.max - s.min); all(false); }
          return;
        }
        if (view.probe) {
          view.probe = false;
          view.measure.label = s.pixels ? s.mean.toFixed(1) + unit + " (" + s.min.toFixed(0) + "–" + s.max.toFixed(0) + ")" : "";
          view.draw();
          V.status(V.data.text.probe + " " + view.measure.label);
          return;
        }
        view.measure.label = s.pixels ? V.data.text.area + " " + (s.area_mm2 / 100).toFixed(2) + " cm² · " +
          V.data.text.mean + " " + s.mean.toFixed(1) + unit + " · " + V.data.text.sd + " " + s.sd.toFixed(1) +
          " · " + s.min.toFixed(0) + "–" + s.max.toFixed(0) : V.data.text.empty;
        view.roi = s;
        view.draw();
        V.status(view.measure.label);
        if (s.pixels) keep(shape === "polygon" ? "freehand" : shape, points.map(function (d) {
          return view.pick(d[0], d[1]);
        }), view.measure.label);
      }).catch(function () { V.status(V.data.text.failed); });
  }

  function all(preview) {
    views.forEach(function (v) { v.show(preview); });
    if (path.length >= 2) showCpr(preview);
    if (preview) settle();
  }
  var settle = V.rester(function () { all(false); });

  // Keep a point inside the volume: inside every plane's image, each of which spans the volume.
  function inside(point) {
    var p = point.slice();
    views.forEach(function (v) {
      var g = v.geom;
      if (!g) return;
      var d = [0, 1, 2].map(function (i) { return p[i] - g.origin[i]; });
      function along(a) { return d[0] * a[0] + d[1] * a[1] + d[2] * a[2]; }
      var col = Math.max(0, Math.min(g.size[1] - 1, along(g.row_axis) / g.spacing[1]));
      var row = Math.max(0, Math.min(g.size[0] - 1, along(g.col_axis) / g.spacing[0]));
      var depth = along(g.normal);
      p = [0, 1, 2].map(function (i) {
        return g.origin[i] + col * g.spacing[1] * g.row_axis[i] + row * g.spacing[0] * g.col_axis[i] +
          depth * g.normal[i];
      });
    });
    return p;
  }

  function moveTo(point, preview, quiet) {
    point = inside(point);
    S.cx = round(point[0]); S.cy = round(point[1]); S.cz = round(point[2]);
    all(preview);
    if (!quiet) tellOthers();
  }

  // The 3-D cursor (定位) across windows: the 2-D viewer, its second monitor and other MPR pages
  // of the same study and frame of reference follow this crosshair, and this one follows theirs.
  var channel = "BroadcastChannel" in window ? new BroadcastChannel("pacs-cursor") : null;
  var windowId = Math.random().toString(36).slice(2);
  var tellOthers = V.rester(function () {
    if (channel && S.cx !== null && V.data.frameOfReference) channel.postMessage({
      type: "cursor", study: V.data.study, for: V.data.frameOfReference,
      point: [S.cx, S.cy, S.cz], from: windowId });
  });
  if (channel) channel.onmessage = function (ev) {
    var m = ev.data || {};
    if (m.type === "cursor" && m.from !== windowId && m.study === V.data.study &&
        m.for === V.data.frameOfReference && m.point && m.point.length === 3) moveTo(m.point, false, true);
  };
  function round(v) { return Math.round(v * 100) / 100; }

  document.querySelectorAll('.v3d-vp[data-op="mpr"]').forEach(function (el) {
    var view = new View(el), start = null;
    views.push(view);
    V.drag(el, {
      start: function (ev) {
        if (!view.geom) return false;
        var t = ev.button === 2 ? "wl" : ev.ctrlKey ? "pan" : tool;
        view.dragTool = t;
        var at = view.at(ev);
        if (t === "cross") moveTo(view.pick(at[0], at[1]), true);
        if (t === "length") start = { at: at, point: view.pick(at[0], at[1]) };
        if (NEEDS[t]) { multiClick(view, at, t); return false; }
        if (t === "freehand") start = { at: at, trace: [at] };
        if (t === "arrow") start = { at: at, point: view.pick(at[0], at[1]) };
        if (t === "wlregion") start = { at: at };
        if (t === "probe") {  // the value under the pointer: a 5×5-pixel region around it
          view.dragTool = "rectangle"; view.probe = true;
          view.measure = { query: view.geom.query, shape: "rectangle", display: [[at[0] - 2, at[1] - 2], [at[0] + 2, at[1] + 2]], label: "" };
          roi(view, view.measure.display);
          return false;
        }
        if (t === "text") {
          var words = window.prompt(V.data.text.enterText, "");
          if (words) keep("text", [view.pick(at[0], at[1])], words.slice(0, 200));
          return false;
        }
        if (t === "ellipse" || t === "rectangle") start = { at: at };
        if (t === "path") { path.push(view.pick(at[0], at[1]).map(round)); pathChanged(); return false; }
      },
      move: function (dx, dy, ev) {
        var t = view.dragTool, r = window.devicePixelRatio || 1, at = view.at(ev);
        if (t === "cross") moveTo(view.pick(at[0], at[1]), true);
        else if (t === "wl") {
          S.wc = round((S.wc === null ? 40 : S.wc) + dy * 2);
          S.ww = Math.max(1, round((S.ww === null ? 400 : S.ww) + dx * 4));
          all(true);
        } else if (t === "pan") { view.px += dx * r; view.py += dy * r; view.show(true); settle(); }
        else if (t === "zoom") { view.z = Math.max(0.1, Math.min(20, view.z * Math.exp(-dy * 0.01))); view.show(true); settle(); }
        else if (t === "rotate") { S[AXIS[view.plane]] = round(S[AXIS[view.plane]] + dx * 0.5); all(true); }
        else if (t === "freehand" && start) {
          var prev = start.trace[start.trace.length - 1];
          if (Math.abs(prev[0] - at[0]) + Math.abs(prev[1] - at[1]) >= 3) start.trace.push(at);
          view.measure = { query: view.geom.query, shape: "polygon", display: start.trace.slice(), label: "" };
          view.draw();
        } else if ((t === "ellipse" || t === "rectangle") && start) {
          view.measure = { query: view.geom.query, shape: t === "wlregion" ? "rectangle" : t, display: [start.at, at], label: "" };
          view.draw();
        } else if (t === "arrow" && start) {
          view.measure = { query: view.geom.query, display: [start.at, at], label: "", arrow: true };
          view.draw();
        } else if (t === "length" && start) {
          var end = view.pick(at[0], at[1]);
          var mm = Math.sqrt([0, 1, 2].reduce(function (s, i) { return s + Math.pow(end[i] - start.point[i], 2); }, 0));
          view.measure = { query: view.geom.query, display: [start.at, at], label: mm.toFixed(1) + " mm" };
          view.draw();
          V.status(V.data.text.length + " " + mm.toFixed(1) + " mm");
        }
      },
      end: function (ev) {
        if (start && view.dragTool === "arrow") {
          var tip = view.at(ev);
          keep("arrow", [start.point, view.pick(tip[0], tip[1])], "");
        }
        if (start && view.dragTool === "length" && view.measure && view.measure.label) {
          var endAt = view.at(ev);
          keep("length", [start.point, view.pick(endAt[0], endAt[1])], view.measure.label);
        }
        if (start && (view.dragTool === "ellipse" || view.dragTool === "rectangle")) roi(view, [start.at, view.at(ev)]);
        if (start && view.dragTool === "wlregion") { view.dragTool = "rectangle"; view.wlRegion = true; roi(view, [start.at, view.at(ev)]); }
        if (start && view.dragTool === "freehand" && start.trace.length >= 3) roi(view, start.trace);
        start = null;
      },
    });
    el.addEventListener("wheel", function (ev) {
      ev.preventDefault();
      if (!view.geom || S.cx === null) return;
      var step = Math.min.apply(null, view.geom.volume.spacing) * (ev.deltaY > 0 ? 1 : -1);
      var n = view.geom.normal;
      moveTo([S.cx + n[0] * step, S.cy + n[1] * step, S.cz + n[2] * step], true);
    }, { passive: false });
    el.addEventListener("contextmenu", function (ev) { ev.preventDefault(); });
    el.addEventListener("dblclick", function () {
      if (multi && multi.kind === "polyline" && !multi.done && multi.points.length > 1) {
        multi.done = true;
        keep("polyline", multi.points.slice(), view.measure.label);
      }
    });
  });

  // ---- curved MPR: the fourth viewport shows the reformat along the path once it has 2 points ----
  var cprEl = document.querySelector('.v3d-vp[data-op="cpr"]'), vrEl = document.querySelector('.v3d-vp[data-op="vr"]');
  var cpr = { angle: 0, pos: 0, length: 0, kind: "straight",
              loader: new V.Loader(cprEl.querySelector(".v3d-img"), function (ok, url) { if (!ok) V.explain(url); }) };
  function cprQuery(preview) {
    var size = V.sizeOf(cprEl, preview ? 512 : 1024);
    return { path: path.map(function (p) { return p.join(","); }).join(";"), kind: cpr.kind,
             ang: cpr.angle, pos: cpr.kind === "cross" ? cpr.pos : null, wc: S.wc, ww: S.ww,
             w: size.w, h: size.h, q: preview ? 60 : null };
  }
  function showCpr(preview) {
    if (path.length < 2) return;
    cpr.loader.want(V.url("cpr", cprQuery(preview), { kind: "straight", ang: 0 }));
    cprEl.querySelector('[data-v="cpr"]').textContent = cpr.kind === "cross"
      ? cpr.pos.toFixed(0) + " / " + cpr.length.toFixed(0) + " mm" : cpr.angle.toFixed(0) + "°";
    if (preview) cprStill();
  }
  var cprStill = V.rester(function () { showCpr(false); });
  function pathChanged() {
    var on = path.length >= 2;
    cprEl.hidden = !on; vrEl.hidden = on;
    cpr.length = 0;
    for (var i = 1; i < path.length; i++) {
      cpr.length += Math.sqrt([0, 1, 2].reduce(function (s, k) { return s + Math.pow(path[i][k] - path[i - 1][k], 2); }, 0));
    }
    cpr.pos = Math.min(cpr.pos, cpr.length);
    views.forEach(function (v) { v.draw(); });
    showCpr(false);
  }
  cprEl.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    var sign = ev.deltaY > 0 ? 1 : -1;
    if (cpr.kind === "cross") cpr.pos = Math.max(0, Math.min(cpr.length, cpr.pos + 2 * sign));
    else cpr.angle = ((cpr.angle + 10 * sign) % 360 + 360) % 360;  // turn the view round the path
    showCpr(true);
  }, { passive: false });
  cprEl.querySelector('[data-key="kind"]').addEventListener("change", function (ev) {
    cpr.kind = ev.target.value; showCpr(false);
  });
  cprEl.querySelector('[data-action="clear-path"]').addEventListener("click", function () {
    path = []; pathChanged();
  });
  window.pacsCPR = { path: function () { return path; }, state: cpr };

  form.querySelectorAll("[data-tool]").forEach(function (b) {
    b.addEventListener("click", function () {
      tool = b.dataset.tool;
      form.querySelectorAll("[data-tool]").forEach(function (o) { o.setAttribute("aria-pressed", String(o === b)); });
    });
  });
  field("window").addEventListener("change", function (ev) {
    var v = ev.target.value.split(",");
    S.wc = v.length === 2 ? +v[0] : null; S.ww = v.length === 2 ? +v[1] : null;
    all(false);
  });
  field("st").addEventListener("change", function (ev) { S.st = +ev.target.value; all(false); });
  field("sp").addEventListener("change", function (ev) { S.sp = ev.target.value; all(false); });
  form.querySelector('[data-action="reset"]').addEventListener("click", function () {
    S.cx = S.cy = S.cz = null; S.rx = S.ry = S.rz = 0; S.wc = S.ww = null;
    views.forEach(function (v) { v.z = 1; v.px = v.py = 0; v.measure = null; });
    all(false);
  });
  form.addEventListener("submit", function (ev) { ev.preventDefault(); });
  // "Save series" keeps this view's crosshair, rotation and slab projection.
  var derive = document.querySelector("[data-derive-query]");
  if (derive) derive.form.addEventListener("submit", function () {
    var q = { rx: S.rx, ry: S.ry, rz: S.rz, st: S.st, sp: S.st ? S.sp : "avg" };
    if (S.cx !== null) { q.cx = S.cx; q.cy = S.cy; q.cz = S.cz; }
    derive.value = V.query(q, DEFAULTS);
  });
  window.addEventListener("resize", V.rester(function () {
    views.forEach(function (v) { v.size = V.sizeOf(v.el, 1024); });
    all(false);
  }));
  window.pacsMPR = { views: views, state: S };
  all(false);
  // The volume rendering starts once every plane is on screen: its first render takes seconds.
  var vrImg = vrEl.querySelector("img[data-src]"), waited = 0;
  (function startVR() {
    var ready = views.every(function (v) { return v.img.dataset.shown; });
    if (ready || ++waited > 600) vrImg.src = vrImg.dataset.src;
    else setTimeout(startVR, 100);
  })();
})(window.V3D);
