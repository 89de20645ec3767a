// DSA view: frame, mask frame, mask shift and logarithmic subtraction change the image at once;
// the wheel steps through frames; play runs the cine.
(function (V) {
  "use strict";
  var form = document.querySelector(".v3d-tools"), vp = document.querySelector(".v3d-vp");
  var img = vp.querySelector(".v3d-img"), frames = V.data.frames, timer = null;
  var loader = new V.Loader(img, function (ok, url) { if (!ok) V.explain(url); });
  function field(key) { return form.querySelector('[data-key="' + key + '"]'); }

  function state() {
    var s = V.sizeOf(vp, 1024);
    return { f: +field("f").value || 0, mask: field("mask").value, sx: field("sx").value,
             sy: field("sy").value, log: field("log").checked, w: s.w, h: s.h };
  }
  function show() { loader.want(V.url("dsa", state())); }
  function step(delta) {
    var f = field("f");
    f.value = ((+f.value || 0) + delta + frames) % frames;
    show();
  }
  form.querySelectorAll("[data-key]").forEach(function (el) { el.addEventListener("input", show); });
  form.addEventListener("submit", function (ev) { ev.preventDefault(); show(); });
  vp.addEventListener("wheel", function (ev) { ev.preventDefault(); step(ev.deltaY > 0 ? 1 : -1); },
                      { passive: false });
  form.querySelector('[data-action="play"]').addEventListener("click", function (ev) {
    var on = !timer;
    ev.currentTarget.setAttribute("aria-pressed", String(on));
    if (on) timer = setInterval(function () { step(1); }, 100);
    else { clearInterval(timer); timer = null; }
  });
  window.addEventListener("resize", V.rester(show));
  show();
})(window.V3D);
