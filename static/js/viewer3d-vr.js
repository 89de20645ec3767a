// Volume rendering view: drag to rotate, or with the transfer-function tool to move/widen the
// opacity ramp (like W/L), pan, wheel/pinch to zoom, six standard views, crop box, table removal,
// scalpel cuts (a polygon drawn on the image removes what projects inside it), export.
(function (V) {
  "use strict";
  var form = document.querySelector(".v3d-tools"), vp = document.querySelector(".v3d-vp");
  var img = vp.querySelector(".v3d-img"), svg = vp.querySelector(".v3d-svg");
  var params = new URLSearchParams(location.search);
  var state, tool = "rotate", cutPoints = [], dragging = false;
  var DEFAULTS = { preset: "ct_bone", v: "anterior", az: 0, el: 0, ro: 0, z: 1, px: 0, py: 0, s: 0, sc: 1 };

  function initial() {
    return { preset: form.querySelector('[data-key="preset"]').value, v: params.get("v") || "anterior",
             az: 0, el: 0, ro: 0, z: 1, px: 0, py: 0, s: 0, sc: 1,
             tbl: params.get("tbl") === "1", sh: params.get("sh") === "0" ? "0" : null,
             cropf: null, cut: [] };
  }
  state = initial();

  var loader = new V.Loader(img, function (ok, url) {
    if (!ok) V.explain(url);
    vp.classList.toggle("v3d-preview", /rq=preview/.test(img.dataset.shown || ""));
  });

  function size() { return V.sizeOf(vp, 1024); }
  function full(quality) {
    var s = size(), q = Object.assign({}, state, { w: s.w, h: s.h });
    q.cut = state.cut.length ? state.cut.join(";") : null;
    if (quality === "preview") q.rq = "preview";
    return q;
  }
  function show(quality) { loader.want(V.url("vr", full(quality), DEFAULTS)); }
  var still = V.rester(function () { dragging = false; show("still"); });
  function preview() { dragging = true; show("preview"); still(); }
  function updateExport() {
    var link = form.querySelector('[data-action="export"]');
    if (link) link.href = V.url("vr", Object.assign(full("still"), { fmt: "png" }), DEFAULTS);
  }

  // ---- tools ----
  form.querySelectorAll("[data-tool]").forEach(function (b) {
    b.addEventListener("click", function () {
      tool = b.dataset.tool;
      form.querySelectorAll("[data-tool]").forEach(function (o) { o.setAttribute("aria-pressed", String(o === b)); });
      cutPoints = []; drawCut();
      vp.classList.toggle("v3d-cutting", tool === "cut");
      if (tool === "cut") V.status(V.data.text.cutHint);
    });
  });
  form.querySelectorAll("[data-view]").forEach(function (b) {
    b.addEventListener("click", function (ev) {
      ev.preventDefault();
      state.v = b.dataset.view; state.az = state.el = state.ro = 0; state.px = state.py = 0;
      form.querySelectorAll("[data-view]").forEach(function (o) { o.setAttribute("aria-pressed", String(o === b)); });
      show("still"); updateExport();
    });
  });
  form.querySelector('[data-key="preset"]').addEventListener("change", function (ev) {
    state.preset = ev.target.value; state.s = 0; state.sc = 1; show("still"); updateExport();
  });
  form.querySelector('[data-key="tbl"]').addEventListener("change", function (ev) {
    state.tbl = ev.target.checked; show("still"); updateExport();
  });
  form.querySelector('[data-key="sh"]').addEventListener("change", function (ev) {
    state.sh = ev.target.checked ? "0" : null; show("still"); updateExport();
  });
  form.querySelectorAll("[data-crop]").forEach(function (r) {
    r.addEventListener("input", function () {
      var f = [];
      form.querySelectorAll("[data-crop]").forEach(function (o) { f[+o.dataset.crop] = +o.value / 100; });
      for (var i = 0; i < 6; i += 2) if (f[i] > f[i + 1] - 0.01) f[i] = Math.max(0, f[i + 1] - 0.01);
      var whole = f.every(function (v, i) { return v === (i % 2 ? 1 : 0); });
      state.cropf = whole ? null : f.join(",");
      preview();
    });
  });
  form.querySelector('[data-action="undo-cut"]').addEventListener("click", function () {
    state.cut.pop(); show("still"); updateExport();
  });
  form.querySelector('[data-action="reset"]').addEventListener("click", function () {
    state = initial(); state.preset = form.querySelector('[data-key="preset"]').value;
    form.querySelectorAll("[data-crop]").forEach(function (o) { o.value = +o.dataset.crop % 2 ? 100 : 0; });
    show("still"); updateExport();
  });
  form.addEventListener("submit", function (ev) { ev.preventDefault(); });

  // ---- pointer ----
  V.drag(vp, {
    start: function (ev) { return tool !== "cut"; },
    move: function (dx, dy, ev) {
      var t = ev.shiftKey ? "tf" : ev.ctrlKey ? "pan" : tool;
      if (t === "rotate") {
        state.az = ((state.az - dx * 0.5) % 360 + 360) % 360;
        state.el = Math.max(-89, Math.min(89, state.el + dy * 0.5));
      } else if (t === "tf") {
        state.s += dx * 2; state.sc = Math.max(0.05, Math.min(20, state.sc * Math.exp(-dy * 0.01)));
      } else if (t === "pan") {
        var r = window.devicePixelRatio || 1;
        state.px += dx * r; state.py += dy * r;
      }
      preview();
    },
    end: function () { updateExport(); },
  });
  vp.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    state.z = Math.max(0.05, Math.min(50, state.z * Math.exp(-ev.deltaY * 0.0015)));
    preview(); updateExport();
  }, { passive: false });

  // ---- scalpel: polygon in the output pixels of the current camera ----
  function toOutput(ev) {
    var r = img.getBoundingClientRect(), s = size();
    return [Math.round((ev.clientX - r.left) / r.width * s.w * 10) / 10,
            Math.round((ev.clientY - r.top) / r.height * s.h * 10) / 10];
  }
  function drawCut() {
    var s = size();
    svg.setAttribute("viewBox", "0 0 " + s.w + " " + s.h);
    svg.innerHTML = cutPoints.length ? '<polygon class="v3d-cut" points="' +
      cutPoints.map(function (p) { return p.join(","); }).join(" ") + '"/>' : "";
  }
  vp.addEventListener("click", function (ev) {
    if (tool !== "cut") return;
    var p = toOutput(ev), last = cutPoints[cutPoints.length - 1];
    if (!last || Math.abs(last[0] - p[0]) + Math.abs(last[1] - p[1]) > 3) cutPoints.push(p);  // a double-click's 2nd click
    drawCut();
  });
  vp.addEventListener("dblclick", function (ev) {
    if (tool !== "cut") return;
    ev.preventDefault();
    if (cutPoints.length >= 3) {
      var s = size(), camera = [state.v, state.az, state.el, state.ro, state.z, state.px, state.py, s.w, s.h];
      state.cut.push(camera.concat([].concat.apply([], cutPoints)).join(","));
      show("still"); updateExport();
    }
    cutPoints = []; drawCut();
  });

  window.addEventListener("resize", V.rester(function () { show("still"); }));
  // The first view of a series builds its volume on the server: say so if it takes a while.
  var slow = setTimeout(function () { V.status(V.data.text.preparing); }, 1200);
  img.addEventListener("load", function () { clearTimeout(slow); }, { once: true });
  show("still"); updateExport();
})(window.V3D);
