// The second monitor: a second window (window.open) with other series of the same study, which
// follows the first window over a BroadcastChannel (same origin only; the messages carry UIDs and
// patient positions, no names). The first window announces its study when it loads, and the
// position (Image Position (Patient)) of a viewport whenever it scrolls; the second window moves
// each of its viewports of that Frame of Reference to the image nearest that position, and opens
// the first window's new study when it changes. Nothing goes back the other way.
(function (global) {
  "use strict";
  var CHANNEL = "pacs-viewer", NAME = "pacs-monitor-2";

  function install(app, data, root) {
    var button = root.querySelectorAll('[data-action="monitor"]');
    if (!global.BroadcastChannel) { button.forEach(function (b) { b.hidden = true; }); return; }
    var channel = new BroadcastChannel(CHANNEL);
    app.monitor = { second: !!data.monitor, channel: channel };

    function url(study, series) {
      return data.urls.viewer + encodeURIComponent(study) + "?monitor=2" +
        (series ? "&series=" + encodeURIComponent(series) : "");
    }
    // The series for the second window: the first of the study not shown here.
    function other() {
      var shown = app.viewports.map(function (v) { return v.stack && v.stack.series; });
      return data.hanging.filter(function (s) { return shown.indexOf(s) < 0; })[0] || data.hanging[0];
    }
    function position(vp) {
      if (!vp || !vp.stack || vp.stack.study !== data.study) return;
      var im = vp.image();
      if (im[4] && vp.stack.forUid) {
        channel.postMessage({ type: "position", study: data.study, forUid: vp.stack.forUid, pos: im[4] });
      }
    }
    function follow(m) {
      app.viewports.forEach(function (w) {
        if (!w.stack || w.stack.study !== m.study || w.stack.forUid !== m.forUid) return;
        var i = app.nearest(w, m.pos);
        if (i >= 0) w.goTo(i, true);
      });
    }

    if (app.monitor.second) {
      channel.onmessage = function (e) {
        var m = e.data || {};
        if (m.type === "study" && m.study !== data.study) global.location.replace(url(m.study, m.series));
        else if (m.type === "position" && m.study === data.study) follow(m);
      };
      app.monitor.ready = function () { channel.postMessage({ type: "hello" }); };
      return;
    }
    var scrolled = app.scrolled;
    app.scrolled = function (vp) {  // the viewport the user (or cine) moves, not its followers
      scrolled(vp);
      if (vp === app.active || (app.cine && app.cine.vp === vp)) position(vp);
    };
    channel.onmessage = function (e) {
      if ((e.data || {}).type === "hello") position(app.active);
    };
    // On another screen when the browser may say where screens are (Window Management API,
    // permission already granted); else the size of this one, for the user to move it over.
    app.monitor.open = function () {
      var target = url(data.study, other());
      function show(box) {
        var features = "popup,width=" + box.availWidth + ",height=" + box.availHeight +
          (box.availLeft !== undefined ? ",left=" + box.availLeft + ",top=" + box.availTop : "");
        if (!global.open(target, NAME, features)) app.status(app.text.popupBlocked);
      }
      var here = global.screen || { availWidth: 1280, availHeight: 800 };
      var asked = global.getScreenDetails && navigator.permissions ?
        navigator.permissions.query({ name: "window-management" }) : Promise.reject();
      asked.then(function (p) {
        if (p.state !== "granted") throw new Error("not granted");
        return global.getScreenDetails();
      }).then(function (details) {
        show(details.screens.filter(function (s) { return s !== details.currentScreen; })[0] || here);
      }).catch(function () { show(here); });
    };
    app.monitor.ready = function () { channel.postMessage({ type: "study", study: data.study, series: other() }); };
  }

  global.PacsMonitor = { install: install };
})(window);
