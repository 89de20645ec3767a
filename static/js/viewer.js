// The viewer page: layouts, the toolbar, keyboard shortcuts, series thumbnails, synchronised
// viewports, cine, the 3-D cursor, key images, export and the measurement list. Viewports
// (viewer-viewport.js) render frames; input (viewer-input.js) turns pointers into view changes;
// tools (viewer-tools.js) draw measurements. Without this file the page still shows the image with plain links.
(function () {
  "use strict";
  var Viewport = window.PacsViewport, Tools = window.PacsTools;
  var data = JSON.parse(document.getElementById("vw-data").textContent);
  var root = document.getElementById("viewer"), grid = document.getElementById("vw-grid");
  var template = document.getElementById("vp-template");
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var phone = window.matchMedia("(max-width: 640px)");
  var coarse = window.matchMedia("(pointer: coarse)").matches;
  var statusTimer = null;

  var app = {
    text: data.text, urls: data.urls, tool: coarse ? "scroll" : "wl", lossless: false, sync: false,
    viewports: [], active: null, annotations: [], keys: [], stacks: {}, tokens: {}, cine: null,
    fetched: {}
  };
  app.tokens[data.study] = data.token;
  window.pacsViewer = app;  // for tests and the console

  // ---- server calls ----
  function json(response) {
    return response.json().catch(function () { return {}; }).then(function (body) {
      if (!response.ok) throw new Error(body.error || response.statusText);
      return body;
    });
  }
  app.get = function (url) {
    return fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" }).then(json);
  };
  app.post = function (url, body) {
    return fetch(url, { method: "POST", credentials: "same-origin", body: JSON.stringify(body || {}),
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf } }).then(json);
  };
  app.studyUrl = function (study, path) { return data.urls.viewer + encodeURIComponent(study) + "/" + path; };
  app.status = function (message) {
    var el = root.querySelector(".vw-status");
    el.textContent = message || "";
    el.classList.toggle("on", !!message);
    clearTimeout(statusTimer);
    statusTimer = setTimeout(function () { el.classList.remove("on"); }, 4000);
  };

  app.stack = function (study, series) {
    var key = study + "|" + series;
    if (!app.stacks[key]) {
      var grant = app.tokens[study] ? "?grant=" + encodeURIComponent(app.tokens[study]) : "";
      app.stacks[key] = app.get(app.studyUrl(study, "series/" + encodeURIComponent(series) + grant))
        .then(function (stack) {
          app.tokens[study] = stack.frameBase.split("/")[2];
          return stack;
        }, function (err) { delete app.stacks[key]; throw err; });
    }
    return app.stacks[key];
  };

  // After a failed frame: when the grant in its URL has expired (403), fetch the stack again
  // without it, which mints a new grant, and move every stack of that study to the new URLs.
  app.recover = function (vp, url) {
    var stack = vp.stack;
    return fetch(url, { method: "HEAD", credentials: "same-origin" }).then(function (r) {
      if (r.status !== 403) return;
      delete app.tokens[stack.study];
      return app.get(app.studyUrl(stack.study, "series/" + encodeURIComponent(stack.series))).then(function (fresh) {
        var old = stack.frameBase;
        app.tokens[stack.study] = fresh.frameBase.split("/")[2];
        Object.keys(app.stacks).forEach(function (key) {
          app.stacks[key].then(function (s) { if (s.frameBase === old) s.frameBase = fresh.frameBase; });
        });
        stack.frameBase = fresh.frameBase;
      }, function () { app.status(app.text.expired); });
    }).catch(function () {});
  };

  app.loadSeries = function (vp, study, series, index, state) {
    return app.stack(study, series).then(function (stack) {
      vp.setStack(stack, index || 0, state);
      defaultWindow(stack);
      annotationsOf(study);
      markThumbs();
      if (vp === app.active) toolbarState();
    }).catch(function (err) { app.status(err.message); });
  };

  // Without a window in the file, ask the server for the first image's min–max once, so W/L
  // dragging and the corner text start from real numbers (the frame itself uses the same window).
  function defaultWindow(stack) {
    if (stack.window || stack.asked) return;
    stack.asked = true;
    var first = stack.images[0], g = stack.geoms[first[3]];
    app.post(app.studyUrl(stack.study, "region-window"),
             { sop: first[0], frame: first[1], kind: "rectangle", points: [[0, 0], [g[1], g[0]]] })
      .then(function (w) { stack.window = [w.center, w.width]; app.viewports.forEach(function (v) { v.draw(); }); })
      .catch(function () {});
  }

  // ---- viewports and layouts ----
  function addViewport(el) {
    var vp = new Viewport(el, app);
    window.PacsInput.attach(vp, app);
    app.viewports.push(vp);
    return vp;
  }

  app.activate = function (vp) {
    if (app.active === vp) return;
    app.viewports.forEach(function (v) { v.el.classList.toggle("active", v === vp); });
    app.active = vp;
    toolbarState();
  };

  app.setLayout = function (name) {
    var m = /^([1-4])x([1-4])$/.exec(name || "");
    if (!m) return;
    var rows = +m[1], cols = +m[2], count = phone.matches ? 1 : rows * cols;
    if (phone.matches) { rows = cols = 1; }
    grid.style.setProperty("--rows", rows);
    grid.style.setProperty("--cols", cols);
    root.setAttribute("data-layout", rows + "x" + cols);
    while (app.viewports.length > count) {
      var gone = app.viewports.pop();
      if (app.cine && app.cine.vp === gone) app.play();
      gone.loader.abort();
      gone.el.remove();
      if (app.active === gone) app.activate(app.viewports[0]);
    }
    var shown = app.viewports.map(function (v) { return v.stack && v.stack.series; });
    while (app.viewports.length < count) {
      grid.appendChild(template.content.cloneNode(true));
      var vp = addViewport(grid.lastElementChild);
      vp.el.classList.add("empty");
      var next = data.hanging.filter(function (s) { return shown.indexOf(s) < 0; })[0];
      if (next) { shown.push(next); app.loadSeries(vp, data.study, next); }
    }
    resized();
  };

  var resizeTimer = null;
  function resized() {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () { app.viewports.forEach(function (v) { v.render(false); }); }, 100);
  }
  window.addEventListener("resize", resized);

  window.PacsSync.install(app);  // app.scrolled, app.changed, app.play

  app.shown = function (vp) { if (vp === app.active) toolbarState(); };
  window.PacsReference.install(app);  // wraps app.shown: other viewports redraw their lines
  window.PacsMonitor.install(app, data, root);  // wraps app.scrolled: the second window follows
  window.PacsCursor.install(app);  // the 3-D cursor (定位); wraps app.scrolled: scrolling drops a marker

  // ---- annotations and key images ----
  function annotationsOf(study) {
    if (app.fetched[study]) return;
    app.fetched[study] = true;
    app.get(app.studyUrl(study, "annotations")).then(function (found) {
      app.annotations = app.annotations.concat(found.annotations);
      app.keys = app.keys.concat(found.keyImages);
      redraw();
    }).catch(function () { app.fetched[study] = false; });
  }
  app.addAnnotation = function (a) { app.annotations.push(a); redraw(); };
  app.isKey = function (sop, frame) {
    return app.keys.some(function (k) { return k.sop === sop && k.frame === frame; });
  };
  function redraw() {
    app.viewports.forEach(function (v) { v.draw(); });
    window.PacsLists.render(app);
  }
  app.redraw = redraw;

  app.goToImage = function (series, sop, frame) {
    var vp = app.viewports.filter(function (v) { return v.stack && v.stack.series === series; })[0];
    if (vp) { app.activate(vp); vp.goTo(vp.find(sop, frame)); return; }
    vp = app.active;
    app.loadSeries(vp, data.study, series).then(function () { vp.goTo(vp.find(sop, frame)); });
  };

  function toggleKey() {
    var vp = app.active;
    if (!vp || !vp.stack) return;
    var im = vp.image();
    app.post(app.studyUrl(vp.stack.study, "key-images"), { sop: im[0], frame: im[1] }).then(function (r) {
      app.keys = app.keys.filter(function (k) { return !(k.sop === im[0] && k.frame === im[1]); });
      if (r.marked) app.keys.push({ sop: im[0], frame: im[1], series: vp.stack.series });
      app.status(r.marked ? app.text.keyOn : app.text.keyOff);
      redraw(); toolbarState();
    }).catch(function (err) { app.status(err.message); });
  }

  // ---- export ----
  // The shown image, or every image of the series, in the viewport's state as PNG, JPEG, TIFF or
  // BMP files; the server audits each export.
  var EXTENSIONS = { png: "png", jpeg: "jpg", tiff: "tif", bmp: "bmp" };
  function exportImage(format, scope) {
    var vp = app.active;
    if (!vp || !vp.stack || !EXTENSIONS[format]) return;
    var st = Object.assign(vp.requestState(false), { fmt: format, q: 95 }), q = window.PacsGeom.query(st);
    var im = vp.image(), name = (vp.stack.modality || "image") + "-" + (vp.stack.number || 0), a = document.createElement("a");
    if (scope === "series") {
      a.href = app.studyUrl(vp.stack.study, "series/" + encodeURIComponent(vp.stack.series) + "/export?" + q);
      a.download = name + ".zip";
    } else {
      a.href = app.studyUrl(vp.stack.study, "export/" + encodeURIComponent(im[0]) + "?" + q + (im[1] ? "&f=" + im[1] : ""));
      a.download = name + "-" + (vp.index + 1) + "." + EXTENSIONS[format];
    }
    document.body.appendChild(a); a.click(); a.remove();
  }

  // ---- toolbar ----
  var HINTS = { polyline: "finishPolyline", ctr: "ctrHint", cobb: "cobbHint", angle: "angleHint" };
  app.setTool = function (tool) {
    if (Tools.drafting()) Tools.cancel();
    app.tool = tool;
    if (HINTS[tool]) app.status(app.text[HINTS[tool]]);
    toolbarState();
    root.setAttribute("data-cursor", tool);
  };
  function pressed(selector, on) {
    root.querySelectorAll(selector).forEach(function (b) { b.setAttribute("aria-pressed", on ? "true" : "false"); });
  }
  app.toolbarState = function () { toolbarState(); };
  function toolbarState() {
    root.querySelectorAll("[data-tool]").forEach(function (b) {
      b.setAttribute("aria-pressed", b.getAttribute("data-tool") === app.tool ? "true" : "false");
    });
    var vp = app.active, st = vp ? vp.state : {};
    pressed('[data-action="invert"]', st.inv); pressed('[data-action="hflip"]', st.hf);
    pressed('[data-action="vflip"]', st.vf); pressed('[data-toggle="sync"]', app.sync);
    pressed('[data-toggle="lossless"]', app.lossless); pressed('[data-action="play"]', !!app.cine);
    var im = vp && vp.stack ? vp.image() : null;
    pressed('[data-action="key"]', im && app.isKey(im[0], im[1]));
    root.querySelectorAll("[data-colormap]").forEach(function (b) {
      b.classList.toggle("on", b.getAttribute("data-colormap") === (st.cm || "gray"));
    });
  }

  function preset(key) {
    var vp = app.active;
    if (!vp || !vp.stack) return;
    var p = vp.stack.presets.filter(function (x) { return x[0] === key; })[0];
    if (!p) return;
    if (p[2] === null) vp.clearWindow(); else vp.setWindow(p[1], p[2], false);
  }

  var ACTIONS = {
    rotate: function (vp) { vp.rotate(); },
    hflip: function (vp) { vp.set({ hf: !vp.state.hf }); },
    vflip: function (vp) { vp.set({ vf: !vp.state.vf }); },
    invert: function (vp) { vp.set({ inv: !vp.state.inv }); },
    reset: function (vp) { vp.reset(); },
    play: function () { app.play(); }, key: toggleKey,
    monitor: function () { if (app.monitor && app.monitor.open) app.monitor.open(); }
  };

  function closeMenus(except) {
    root.querySelectorAll("details.menu[open]").forEach(function (d) { if (d !== except && !d.contains(except)) d.open = false; });
  }

  root.addEventListener("click", function (e) {
    var t = e.target.closest ? e.target.closest("[data-tool],[data-action],[data-preset],[data-colormap],[data-layout],[data-toggle],[data-export],[data-panel],[data-compare],a.thumb") : null;
    if (!t) { if (!e.target.closest || !e.target.closest("details.menu")) closeMenus(); return; }
    var vp = app.active;
    if (t.matches("a.thumb")) {
      e.preventDefault();
      app.loadSeries(vp, t.getAttribute("data-study"), t.getAttribute("data-series"));
    } else if (t.hasAttribute("data-tool")) app.setTool(t.getAttribute("data-tool"));
    else if (t.hasAttribute("data-action")) {
      e.preventDefault();
      var act = ACTIONS[t.getAttribute("data-action")];
      if (act && vp && vp.stack) act(vp);
    } else if (t.hasAttribute("data-preset")) { e.preventDefault(); preset(t.getAttribute("data-preset")); }
    else if (t.hasAttribute("data-colormap")) { if (vp) vp.set({ cm: t.getAttribute("data-colormap") }); }
    else if (t.hasAttribute("data-layout")) app.setLayout(t.getAttribute("data-layout"));
    else if (t.hasAttribute("data-toggle")) {
      var which = t.getAttribute("data-toggle");
      app[which] = !app[which];
      if (which === "lossless") app.viewports.forEach(function (v) { v.render(false); });
      if (which === "sync" && app.sync && vp && vp.stack) { app.scrolled(vp); app.changed(vp, "wl"); }
    } else if (t.hasAttribute("data-export")) exportImage(t.getAttribute("data-export"), t.getAttribute("data-scope"));
    else if (t.hasAttribute("data-panel")) { e.preventDefault(); setPanel(t.getAttribute("data-panel")); }
    else if (t.hasAttribute("data-compare")) compare(t.getAttribute("data-compare"), t.parentNode.querySelector("details"));
    toolbarState();
    closeMenus();
  });
  root.addEventListener("toggle", function (e) { if (e.target.open) closeMenus(e.target); }, true);

  function setPanel(side) {
    root.className = root.className.replace(/\bpanel-\w+/, "panel-" + side);
    try { localStorage.setItem("pacs.viewer.panel", side); } catch (err) { /* private mode */ }
    resized();
  }

  // A prior study beside the current one: two viewports, the prior's first series on the right.
  function compare(study, details) {
    var box = details.querySelector(".prior-series");
    var ready = box.querySelector("a.thumb") ? Promise.resolve() :
      fetch(app.studyUrl(study, "panel"), { credentials: "same-origin" }).then(function (r) { return r.text(); })
        .then(function (html) { box.innerHTML = html; });
    details.open = true;
    ready.then(function () {
      var first = box.querySelector("a.thumb");
      if (!first) return;
      if (app.viewports.length < 2) app.setLayout("1x2");
      app.loadSeries(app.viewports[1], study, first.getAttribute("data-series"));
    });
  }

  // Thumbnails are drag sources for the viewports.
  root.addEventListener("dragstart", function (e) {
    var t = e.target.closest && e.target.closest("a.thumb");
    if (!t) return;
    e.dataTransfer.setData("application/x-pacs-series", JSON.stringify(
      { study: t.getAttribute("data-study"), series: t.getAttribute("data-series") }));
    e.dataTransfer.effectAllowed = "copy";
  });
  function markThumbs() {
    var shown = app.viewports.map(function (v) { return v.stack && v.stack.series; });
    root.querySelectorAll("a.thumb").forEach(function (t) {
      t.classList.toggle("current", shown.indexOf(t.getAttribute("data-series")) >= 0);
    });
  }

  // ---- keyboard ----
  var KEYS = { w: "wl", s: "scroll", p: "pan", z: "zoom", m: "magnify", l: "length", a: "angle",
               e: "ellipse", d: "probe", t: "text", c: "cursor" };
  document.addEventListener("keydown", function (e) {
    if (e.target.closest && e.target.closest("input, select, textarea") || e.ctrlKey || e.metaKey || e.altKey) return;
    var vp = app.active, k = e.key;
    if (!vp || !vp.stack) return;
    var step = { ArrowUp: -1, ArrowLeft: -1, ArrowDown: 1, ArrowRight: 1, PageUp: -10, PageDown: 10 }[k];
    if (step) { vp.scrollBy(step, false); e.preventDefault(); return; }
    if (k === "Home") vp.goTo(0); else if (k === "End") vp.goTo(vp.stack.images.length - 1);
    else if (/^[0-9]$/.test(k)) preset(k);
    else if (k === "r" || k === "R") ACTIONS.rotate(vp);
    else if (k === "h" || k === "H") ACTIONS.hflip(vp);
    else if (k === "v" || k === "V") ACTIONS.vflip(vp);
    else if (k === "i" || k === "I") ACTIONS.invert(vp);
    else if (k === "k" || k === "K") toggleKey();
    else if (k === " ") { app.play(); e.preventDefault(); }
    else if (k === "Enter") Tools.finishPolyline();
    else if (k === "Escape") { if (Tools.drafting()) Tools.cancel(); else vp.reset(); closeMenus(); }
    else if (KEYS[k.toLowerCase()]) app.setTool(KEYS[k.toLowerCase()]);
    else return;
    e.preventDefault();
  });

  // ---- start ----
  function pageState() {
    var s = data.state || {}, st = Viewport.defaultState();
    ["wc", "ww", "z", "px", "py", "rot"].forEach(function (k) { if (s[k] !== undefined) st[k] = +s[k]; });
    ["hf", "vf", "inv"].forEach(function (k) { if (s[k] !== undefined) st[k] = s[k] === "1"; });
    if (s.cm) st.cm = s.cm;
    return st;
  }
  try {
    var side = localStorage.getItem("pacs.viewer.panel");
    if (side && !/[?&]panel=/.test(location.search)) setPanel(side);
  } catch (err) { /* private mode */ }
  root.setAttribute("data-cursor", app.tool);
  var first = addViewport(grid.querySelector(".vp"));
  app.activate(first);
  // The page's own image comes first: the script fetches the stack meanwhile, but asks for
  // frames of its own only once that image is in (one frame request in flight per viewport).
  app.stack(data.study, data.series).catch(function () {});
  var pageImage = new Promise(function (resolve) {
    if (first.img.complete) resolve();
    else { first.img.addEventListener("load", resolve); first.img.addEventListener("error", resolve); }
  });
  pageImage.then(function () {
    return app.loadSeries(first, data.study, data.series, data.index, pageState());
  }).then(function () {
    var layout = data.layout;
    if (layout && layout !== "1x1") app.setLayout(layout);
    if (app.monitor) app.monitor.ready();
  });
  phone.addEventListener && phone.addEventListener("change", function () { app.setLayout(root.getAttribute("data-layout")); });
})();
