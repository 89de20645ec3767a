// The side panel's lists: the user's measurements (click to show, delete) and key images.
(function (global) {
  "use strict";

  function item(list, label, sub, go, del, T) {
    var li = document.createElement("li"), b = document.createElement("button");
    b.type = "button"; b.className = "go"; b.textContent = label;
    if (sub) { var s = document.createElement("small"); s.textContent = sub; b.appendChild(s); }
    b.addEventListener("click", go);
    li.appendChild(b);
    if (del) {
      var x = document.createElement("button");
      x.type = "button"; x.className = "del"; x.title = T.delete; x.setAttribute("aria-label", T.delete);
      x.textContent = "×";
      x.addEventListener("click", del);
      li.appendChild(x);
    }
    list.appendChild(li);
  }

  function position(app, series, sop, frame) {
    var vp = app.viewports.filter(function (v) { return v.stack && v.stack.series === series; })[0];
    var i = vp ? vp.find(sop, frame) : -1;
    return i >= 0 ? app.text.image + " " + (i + 1) : "";
  }

  function render(app) {
    var T = app.text, list = document.getElementById("vw-annotations"), keys = document.getElementById("vw-keys");
    if (!list || !keys) return;
    list.textContent = ""; keys.textContent = "";
    app.annotations.forEach(function (a) {
      var words = global.PacsTools.label(a, T);
      var name = T[a.kind] || a.kind, first = words[0] || "";
      var named = first.indexOf(name) === 0 || (a.kind === "ctr" && first.indexOf(T.ctr) === 0);
      item(list, named ? first : name + (first ? " · " + first : ""),
           position(app, a.series, a.sop, a.frame),
           function () { app.goToImage(a.series, a.sop, a.frame); },
           function () {
             app.post(app.studyUrl(a.study, "annotations/" + a.id + "/delete")).then(function () {
               app.annotations = app.annotations.filter(function (b) { return b.id !== a.id; });
               app.redraw();
             }).catch(function (err) { app.status(err.message); });
           }, T);
    });
    app.keys.forEach(function (k) {
      item(keys, "★ " + (position(app, k.series, k.sop, k.frame) || T.image), "",
           function () { app.goToImage(k.series, k.sop, k.frame); }, null, T);
    });
    document.getElementById("vw-ann-count").textContent = app.annotations.length;
    document.getElementById("vw-key-count").textContent = app.keys.length;
    document.getElementById("vw-ann-empty").hidden = app.annotations.length > 0;
  }

  global.PacsLists = { render: render };
})(window);
