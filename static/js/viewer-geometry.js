// Viewer geometry: the same math as render_farm/viewport.py, so the browser maps pointer
// positions to image pixels exactly as the server placed them.
//
//   geometry(state, rows, columns, spacing) is viewport_geometry(): image → display is
//   T(out centre) · R(rotation) · F(flips) · S(scale) · T(-(image centre + pan)).
//   query(state) is ViewState.to_query(): short keys, defaults omitted, keys sorted.
//
// Coordinates are continuous: pixel (column i, row j) covers [i, i+1) × [j, j+1).
// tests/web/test_viewer_browser.py checks this file against the Python functions.
(function (global) {
  "use strict";

  // Python's round(): halves to even.
  function pyRound(x) {
    var r = Math.round(x);
    return (Math.abs(x % 1) === 0.5 && r % 2 !== 0) ? r - 1 : r;
  }

  function cosSin(degrees) {
    var exact = { 0: [1, 0], 90: [0, 1], 180: [-1, 0], 270: [0, -1] };
    if (exact.hasOwnProperty(degrees)) return exact[degrees];
    var radians = degrees * Math.PI / 180;
    return [Math.cos(radians), Math.sin(radians)];
  }

  function isUnit(v) { return v === 1 || v === -1 || v === 0; }

  // -> {fwd: [a, b, c, d, e, f], inv: [...], width, height, scaleX, scaleY}
  // where display x = a*x + b*y + c, display y = d*x + e*y + f (a 2×3 affine, row-major).
  function geometry(st, rows, columns, spacing) {
    var aspect = spacing && spacing[0] && spacing[1] ? spacing[0] / spacing[1] : 1;
    var rot = ((st.rot || 0) % 360 + 360) % 360;
    var cs = cosSin(rot), cos = cs[0], sin = cs[1];
    var physW = columns, physH = rows * aspect;
    var boxW = Math.abs(cos) * physW + Math.abs(sin) * physH;
    var boxH = Math.abs(sin) * physW + Math.abs(cos) * physH;
    var outW = st.w || Math.max(1, pyRound(boxW)), outH = st.h || Math.max(1, pyRound(boxH));
    var scale = Math.min(outW / boxW, outH / boxH) * (st.z || 1);
    var sx = scale * (st.hf ? -1 : 1), sy = scale * aspect * (st.vf ? -1 : 1);
    // Linear part R·F·S, then the translation of T(out/2) · L · T(-(centre + pan)).
    var a = cos * sx, b = -sin * sy, d = sin * sx, e = cos * sy;
    var cx = -(columns / 2 + (st.px || 0)), cy = -(rows / 2 + (st.py || 0));
    var c = outW / 2 + a * cx + b * cy, f = outH / 2 + d * cx + e * cy;
    if (isUnit(a) && isUnit(b) && isUnit(d) && isUnit(e) &&
        Math.abs(a) + Math.abs(d) === 1 && Math.abs(b) + Math.abs(e) === 1) {
      c = Math.floor(c + 0.5); f = Math.floor(f + 0.5);  // 1:1 views stay pixel-exact
    }
    var det = a * e - b * d;
    var ia = e / det, ib = -b / det, id = -d / det, ie = a / det;
    return { fwd: [a, b, c, d, e, f], inv: [ia, ib, -(ia * c + ib * f), id, ie, -(id * c + ie * f)],
             width: outW, height: outH, scaleX: scale, scaleY: scale * aspect };
  }

  function apply(m, x, y) { return [m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5]]; }

  // ---- the canonical query (ViewState.to_query) ----
  var DEFAULTS = { wc: null, ww: null, w: null, h: null, z: 1, px: 0, py: 0, rot: 0, hf: false,
                   vf: false, inv: false, cm: "gray", fmt: "jpeg", q: 90, sm: 0, sh: 0 };

  var LOSSLESS = { png: true, gif: true, tiff: true, bmp: true };  // ImageFormat.lossless

  function number(v) { return String(Number(v)); }

  function query(st) {
    var keys = Object.keys(DEFAULTS).sort(), parts = [];
    for (var i = 0; i < keys.length; i++) {
      var k = keys[i], v = st[k];
      if (v === undefined || v === null || v === DEFAULTS[k]) continue;
      if (k === "q" && LOSSLESS[st.fmt]) continue;  // lossless: quality is normalised away
      if (typeof v === "boolean") { if (v) parts.push(k + "=1"); continue; }
      parts.push(k + "=" + (typeof v === "number" ? number(v) : encodeURIComponent(v)));
    }
    return parts.join("&");
  }

  // Round the continuous state so URLs (and so caches) repeat.
  function tidy(st) {
    function r(v, n) { var p = Math.pow(10, n); return Math.round(v * p) / p; }
    if (st.wc !== null && st.wc !== undefined) { st.wc = r(st.wc, 1); st.ww = Math.max(1, r(st.ww, 1)); }
    st.z = Math.min(64, Math.max(0.01, r(st.z, 3)));
    st.px = r(st.px, 1); st.py = r(st.py, 1);
    if (st.z === 1 && Math.abs(st.px) < 0.05 && Math.abs(st.py) < 0.05) { st.px = 0; st.py = 0; }
    return st;
  }

  // ---- orientation letters (PS3.3 C.7.6.1.1.1), as app/services/viewer.py ----
  var AXES = [["R", "L"], ["A", "P"], ["I", "S"]];

  function letters(v) {
    var n = Math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
    if (!n) return "";
    var parts = [0, 1, 2].map(function (k) { return [Math.abs(v[k]) / n, k, v[k]]; });
    parts.sort(function (p, q) { return q[0] - p[0] || q[1] - p[1]; });
    var strongest = parts[0][0], out = "";
    parts.forEach(function (p) { if (p[0] >= strongest / 3 && p[0] > 1e-4) out += AXES[p[1]][p[2] > 0 ? 1 : 0]; });
    return out;
  }

  // geom: [rows, columns, rowSpacing, columnSpacing, iop0..iop5]; inv: display → image.
  function orientation(inv, geom) {
    var iop = geom.slice(4, 10);
    if (iop.length < 6 || iop.some(function (x) { return x === null; })) return null;
    var rmm = geom[2] || 1, cmm = geom[3] || 1;
    function patient(dx, dy) {
      var dc = inv[0] * dx + inv[1] * dy, dr = inv[3] * dx + inv[4] * dy;
      return [0, 1, 2].map(function (k) { return dc * cmm * iop[k] + dr * rmm * iop[3 + k]; });
    }
    return { right: letters(patient(1, 0)), left: letters(patient(-1, 0)),
             bottom: letters(patient(0, 1)), top: letters(patient(0, -1)) };
  }

  // A scale bar: the longest round length (mm) no longer than maxPx display pixels.
  function scaleBar(mmPerPx, maxPx) {
    var steps = [1, 2, 5, 10, 20, 50, 100, 200, 500], best = null;
    for (var i = 0; i < steps.length; i++) if (steps[i] / mmPerPx <= maxPx) best = steps[i];
    return best ? { mm: best, px: best / mmPerPx } : null;
  }

  // The unit normal of an image plane (row cosines × column cosines), or null.
  function normal(geom) {
    var r = geom.slice(4, 7), c = geom.slice(7, 10);
    if (r.length < 3 || c.length < 3 || r.concat(c).some(function (x) { return x === null; })) return null;
    return [r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0]];
  }

  global.PacsGeom = { geometry: geometry, apply: apply, query: query, tidy: tidy, letters: letters,
                      orientation: orientation, scaleBar: scaleBar, normal: normal, pyRound: pyRound };
})(window);
