// Pointer, wheel and touch handling of the viewports.
//
// Mouse: the left button does the chosen tool (W/L, scroll, pan, zoom, magnifier, 3-D cursor or a
// measurement),
// the middle button pans, the right button zooms; the wheel scrolls through images, Ctrl+wheel
// (and a touchpad pinch) zooms at the pointer. Touch: one finger does the chosen tool, two fingers
// pinch to zoom and move to pan.
(function (global) {
  "use strict";
  var Tools = global.PacsTools;

  function attach(vp, app) {
    var el = vp.el, pointers = new Map(), drag = null, pinch = null, wheelRest = null;

    function begin(e, tool) {
      var win = vp.window() || [128, 256];
      return { tool: tool, x: e.clientX, y: e.clientY, lastX: e.clientX, lastY: e.clientY,
               wc: win[0], ww: win[1], z: vp.state.z, steps: 0, moved: false };
    }

    function pinchState() {
      var list = Array.from(pointers.values()), a = list[0], b = list[1];
      var mid = [(a.x + b.x) / 2, (a.y + b.y) / 2];
      return { mid: mid, dist: Math.max(10, Math.hypot(a.x - b.x, a.y - b.y)) };
    }

    el.addEventListener("pointerdown", function (e) {
      app.activate(vp);
      if (!vp.stack || !vp.shown) return;
      try { el.setPointerCapture(e.pointerId); } catch (err) { /* a pointer the browser no longer tracks */ }
      pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
      if (pointers.size === 2) {  // a second finger: pinch and pan, whatever the tool
        if (drag && Tools.isTool(drag.tool)) Tools.cancel();
        drag = null;
        var ps = pinchState();
        pinch = { start: ps, z: vp.state.z, px: vp.state.px, py: vp.state.py,
                  image: vp.toImage(ps.mid[0], ps.mid[1], vp.stateGeometry()) };
        return;
      }
      if (pointers.size > 2) return;
      var tool = e.button === 1 ? "pan" : e.button === 2 ? "zoom" : app.tool;
      drag = begin(e, tool);
      if (Tools.isTool(tool)) Tools.start(vp, tool, e);
      else if (tool === "magnify") vp.lens(e.clientX, e.clientY);
      else if (tool === "cursor") app.cursorAt(vp, e.clientX, e.clientY);
      e.preventDefault();
    });

    el.addEventListener("pointermove", function (e) {
      if (pointers.has(e.pointerId)) pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
      if (pinch && pointers.size >= 2) return doPinch();
      if (!drag) { if (Tools.drafting() && e.pointerType === "mouse") Tools.move(vp, e); return; }
      var dx = e.clientX - drag.lastX, dy = e.clientY - drag.lastY;
      var tx = e.clientX - drag.x, ty = e.clientY - drag.y;
      if (Math.abs(tx) + Math.abs(ty) > 3) drag.moved = true;
      drag.lastX = e.clientX; drag.lastY = e.clientY;
      switch (drag.tool) {
        case "wl": {
          var k = Math.max(drag.ww, 2) / 250;
          vp.setWindow(drag.wc + ty * k, Math.max(1, drag.ww + tx * k), true);
          break;
        }
        case "pan": vp.panBy(dx, dy, true); break;
        case "zoom": vp.zoomAt(Math.exp(-dy / 200), drag.x, drag.y, true); break;
        case "scroll": {
          var n = vp.stack.images.length, step = Math.max(3, Math.min(14, el.clientHeight / n));
          var steps = Math.trunc(ty / step);
          if (steps !== drag.steps) { vp.scrollBy(steps - drag.steps, true); drag.steps = steps; }
          break;
        }
        case "magnify": vp.lens(e.clientX, e.clientY); break;
        case "cursor": app.cursorAt(vp, e.clientX, e.clientY); break;
        default: if (Tools.isTool(drag.tool)) Tools.move(vp, e);
      }
    });

    function doPinch() {
      var now = pinchState(), s = pinch.start;
      vp.state.z = Math.min(64, Math.max(0.05, pinch.z * now.dist / s.dist));
      vp.state.px = pinch.px; vp.state.py = pinch.py;
      var here = vp.toImage(now.mid[0], now.mid[1], vp.stateGeometry());
      if (here && pinch.image) {
        vp.state.px += pinch.image[0] - here[0]; vp.state.py += pinch.image[1] - here[1];
      }
      vp.render(true); app.changed(vp, "view");
    }

    function finish(e) {
      pointers.delete(e.pointerId);
      if (pinch) { if (pointers.size < 2) { pinch = null; vp.render(false); } return; }
      if (!drag) return;
      var d = drag;
      drag = null;
      if (Tools.isTool(d.tool)) { if (e.type === "pointerup") Tools.end(vp, d.tool, e); else Tools.cancel(); }
      else if (d.tool === "magnify") vp.lens(null);
      else if (d.moved) vp.render(false);
    }
    el.addEventListener("pointerup", finish);
    el.addEventListener("pointercancel", finish);
    el.addEventListener("contextmenu", function (e) { e.preventDefault(); });
    el.addEventListener("dblclick", function (e) { if (app.tool === "polyline") Tools.finishPolyline(); e.preventDefault(); });

    el.addEventListener("wheel", function (e) {
      if (!vp.stack || !vp.shown) return;
      e.preventDefault();
      app.activate(vp);
      if (e.ctrlKey || e.metaKey) {
        vp.zoomAt(Math.exp(-e.deltaY / (e.deltaMode ? 10 : 300)), e.clientX, e.clientY, true);
        clearTimeout(wheelRest);
        wheelRest = setTimeout(function () { vp.render(false); }, 150);
        return;
      }
      // One image per notch of a mouse wheel; touchpads send many small deltas, gathered here.
      var steps;
      if (e.deltaMode || Math.abs(e.deltaY) >= 50) { steps = e.deltaY > 0 ? 1 : e.deltaY < 0 ? -1 : 0; vp.wheelAcc = 0; }
      else {
        vp.wheelAcc = (vp.wheelAcc || 0) + e.deltaY;
        steps = Math.trunc(vp.wheelAcc / 25);
        vp.wheelAcc -= steps * 25;
      }
      if (steps) vp.scrollBy(steps, true);
    }, { passive: false });

    // Dropping a series thumbnail shows that series here.
    el.addEventListener("dragover", function (e) {
      if (Array.prototype.indexOf.call(e.dataTransfer.types, "application/x-pacs-series") >= 0) {
        e.preventDefault(); el.classList.add("drop");
      }
    });
    el.addEventListener("dragleave", function () { el.classList.remove("drop"); });
    el.addEventListener("drop", function (e) {
      el.classList.remove("drop");
      var raw = e.dataTransfer.getData("application/x-pacs-series");
      if (!raw) return;
      e.preventDefault();
      var ref = JSON.parse(raw);
      app.activate(vp);
      app.loadSeries(vp, ref.study, ref.series);
    });
  }

  global.PacsInput = { attach: attach };
})(window);
