// Fusion view: on axial slices of the base or on its coronal/sagittal MPR planes. The wheel or a
// drag up/down scrolls (slices, or the plane along its normal), right-drag (or shift) changes the
// base window like W/L; opacity, colour map, SUV and the overlay window apply at once.
(function (V) {
  "use strict";
  var form = document.querySelector(".v3d-tools"), vp = document.querySelector(".v3d-vp");
  var img = vp.querySelector(".v3d-img"), cap = vp.querySelector(".v3d-cap");
  var slices = V.data.slices, k = Math.floor(slices / 2), wc = null, ww = null;
  var plane = "axial", mpr = null;  // coronal/sagittal: the base's MPR plane through mpr.point
  var loader = new V.Loader(img, function (ok, url) { if (!ok) V.explain(url); });
  function field(key) { return form.querySelector('[data-key="' + key + '"]'); }

  function state(preview) {
    var s = V.sizeOf(vp, preview ? 512 : 1024);
    var where = plane === "axial" ? { k: k } :
      { o: plane, cx: mpr.point[0], cy: mpr.point[1], cz: mpr.point[2] };
    return Object.assign(where, {
      op: +field("op").value, ocm: field("ocm").value, suv: field("suv").checked,
      omin: field("omin").value, omax: field("omax").value, wc: wc, ww: ww, w: s.w, h: s.h,
      q: preview ? 60 : null });
  }
  var still = V.rester(function () { loader.want(V.url("fusion/" + V.data.overlay, state(false))); });
  function show(preview) {
    loader.want(V.url("fusion/" + V.data.overlay, state(preview)));
    cap.textContent = plane === "axial" ? (k + 1) + " / " + slices
      : mpr.point.map(function (v) { return v.toFixed(1); }).join(", ") + " mm";
    if (preview) still();
  }
  function scroll(delta) {
    if (plane === "axial") k = Math.max(0, Math.min(slices - 1, k + delta));
    else mpr.point = mpr.point.map(function (v, i) { return Math.round((v + mpr.normal[i] * mpr.step * delta) * 100) / 100; });
    show(false);
  }
  // Coronal or sagittal: start at the base volume's centre, stepping along the plane's normal.
  function setPlane(name) {
    if (name === "axial") { plane = name; show(false); return; }
    fetch(V.url("mpr_geometry", { o: name, w: 64, h: 64 }, { o: "axial" }), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r); })
      .then(function (g) {
        mpr = { point: g.crosshair, normal: g.normal, step: Math.min.apply(null, g.volume.spacing) };
        plane = name;
        show(false);
      }).catch(function () { V.status(V.data.text.failed); });
  }

  form.querySelectorAll("[data-key]").forEach(function (el) {
    if (el.dataset.key === "plane") {
      el.addEventListener("change", function () { setPlane(el.value); });
    } else if (el.dataset.key === "overlay") {
      el.addEventListener("change", function () { form.submit(); });  // another series: a new page
    } else el.addEventListener("input", function () { show(el.type === "range"); });
  });
  vp.addEventListener("wheel", function (ev) { ev.preventDefault(); scroll(ev.deltaY > 0 ? 1 : -1); },
                      { passive: false });
  var acc = 0;
  V.drag(vp, {
    move: function (dx, dy, ev) {
      if (ev.shiftKey || ev.buttons === 2) {
        wc = (wc === null ? 40 : wc) + dy * 2; ww = Math.max(1, (ww === null ? 400 : ww) + dx * 4);
        show(true);
      } else {
        acc += dy;
        var steps = Math.trunc(acc / 8);
        if (steps) { acc -= steps * 8; scroll(steps); }
      }
    },
  });
  vp.addEventListener("contextmenu", function (ev) { ev.preventDefault(); });
  // Click (without dragging): the values under the pointer — base HU, overlay value, SUVbw.
  var down = null, probeEl = vp.querySelector('[data-v="probe"]');
  vp.addEventListener("pointerdown", function (ev) { down = [ev.clientX, ev.clientY]; });
  vp.addEventListener("click", function (ev) {
    if (!down || Math.abs(ev.clientX - down[0]) + Math.abs(ev.clientY - down[1]) > 3) return;
    var r = img.getBoundingClientRect(), q = state(false);
    q.at = ((ev.clientX - r.left) * q.w / r.width).toFixed(1) + "," + ((ev.clientY - r.top) * q.h / r.height).toFixed(1);
    delete q.q;
    fetch(V.url("fusion/" + V.data.overlay + "/probe", q), { credentials: "same-origin" })
      .then(function (resp) { return resp.ok ? resp.json() : Promise.reject(resp); })
      .then(function (p) {
        var parts = [V.data.text.base + " " + p.base];
        if (p.overlay !== null) parts.push(p.overlay_modality + " " + p.overlay);
        if (p.suv !== null) parts.push("SUV " + p.suv.toFixed(2));
        probeEl.textContent = parts.join(" · ");
      }).catch(function () { V.status(V.data.text.failed); });
  });
  window.addEventListener("resize", V.rester(function () { show(false); }));
  show(false);
})(window.V3D);
