// Small page helpers. Every page works without this file (and without htmx):
// forms are plain GET/POST forms, links are plain links.
(function () {
  "use strict";

  // CSRF token on every htmx request that changes something (the meta tag in base.html).
  document.addEventListener("htmx:configRequest", function (event) {
    var token = document.querySelector('meta[name="csrf-token"]');
    if (token && event.detail.verb !== "get") event.detail.headers["X-CSRFToken"] = token.content;
  });

  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function isoDate(d) { return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()); }

  function humanSize(bytes) {
    var units = ["B", "KB", "MB", "GB"], i = 0;
    while (bytes >= 1024 && i < units.length - 1) { bytes /= 1024; i++; }
    return (i === 0 ? bytes : bytes.toFixed(1)) + " " + units[i];
  }

  // Study list date shortcuts (今天 / 近7天 …): fill the two date boxes and search.
  // Without JavaScript the same buttons submit ?days=N and the server fills the dates.
  document.addEventListener("click", function (event) {
    var chip = event.target.closest && event.target.closest("button[data-days]");
    if (!chip || !chip.form) return;
    var form = chip.form, days = parseInt(chip.getAttribute("data-days"), 10);
    var from = form.querySelector('[name="date_from"]'), to = form.querySelector('[name="date_to"]');
    if (!from || !to || !(days > 0)) return;
    event.preventDefault();
    var today = new Date(), start = new Date(today.getFullYear(), today.getMonth(), today.getDate() - (days - 1));
    from.value = isoDate(start);
    to.value = isoDate(today);
    markChip(form);
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
  });

  // Highlight the shortcut that matches the date boxes.
  function markChip(form) {
    var from = form.querySelector('[name="date_from"]'), to = form.querySelector('[name="date_to"]');
    if (!from || !to) return;
    var today = new Date();
    form.querySelectorAll("button[data-days]").forEach(function (chip) {
      var days = parseInt(chip.getAttribute("data-days"), 10);
      var start = new Date(today.getFullYear(), today.getMonth(), today.getDate() - (days - 1));
      var on = to.value === isoDate(today) && from.value === isoDate(start);
      chip.classList.toggle("active", on);
      chip.setAttribute("aria-pressed", on ? "true" : "false");
    });
  }
  document.addEventListener("input", function (event) {
    var t = event.target;
    if (t.form && (t.name === "date_from" || t.name === "date_to")) markChip(t.form);
  });

  // Upload: say what is selected, refuse what is over the server's limit before sending it.
  function uploadSelection(form) {
    var count = 0, bytes = 0;
    form.querySelectorAll('input[type="file"]').forEach(function (input) {
      for (var i = 0; i < input.files.length; i++) { count++; bytes += input.files[i].size; }
    });
    return { count: count, bytes: bytes };
  }
  document.addEventListener("change", function (event) {
    var form = event.target.form;
    if (!form || form.id !== "upload-form") return;
    var sel = uploadSelection(form), out = document.getElementById("upload-selected");
    var lang = document.documentElement.lang || "";
    if (out) {
      out.textContent = sel.count === 0 ? "" : lang.indexOf("zh") === 0
        ? "已选择 " + sel.count + " 个文件，共 " + humanSize(sel.bytes)
        : sel.count + " file" + (sel.count === 1 ? "" : "s") + " selected, " + humanSize(sel.bytes);
    }
  });
  document.addEventListener("htmx:confirm", function (event) {
    var form = event.target;
    if (form.id !== "upload-form") return;
    var max = parseInt(form.getAttribute("data-max-bytes") || "0", 10), sel = uploadSelection(form);
    if (max && sel.bytes > max) {
      event.preventDefault();
      var result = document.getElementById("upload-result");
      var message = (form.getAttribute("data-too-large") || "").replace("{size}", humanSize(sel.bytes));
      if (result) {
        result.innerHTML = '<div class="card results-card"><p class="alert bad" role="alert"></p></div>';
        result.querySelector("p").textContent = message;
      }
    }
  });

  // Upload progress bar, driven by the XHR upload events htmx forwards.
  function progressParts() {
    return { box: document.getElementById("upload-progress-box"), bar: document.getElementById("upload-progress"),
      label: document.getElementById("upload-percent") };
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (event.target.id !== "upload-form") return;
    var p = progressParts();
    if (!p.bar) return;
    p.box.hidden = false; p.bar.value = 0; p.label.textContent = "0%";
  });
  document.addEventListener("htmx:xhr:progress", function (event) {
    var p = progressParts();
    if (!p.bar || !event.detail.lengthComputable || !event.detail.total) return;
    var percent = Math.round((event.detail.loaded / event.detail.total) * 100);
    p.bar.value = percent;
    p.label.textContent = percent + "%";
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.target.id !== "upload-form") return;
    var p = progressParts();
    if (p.bar) { p.bar.value = 100; p.label.textContent = "100%"; }
    if (event.detail.successful) {
      event.target.reset();
      var out = document.getElementById("upload-selected");
      if (out) out.textContent = "";
    }
  });

  function markSearchForm() {
    var search = document.getElementById("study-search");
    if (search) markChip(search);
  }
  document.addEventListener("DOMContentLoaded", markSearchForm);
  document.addEventListener("htmx:load", markSearchForm);  // after boosted navigation
})();
