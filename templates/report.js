/* trainprof report: zoom and pan the step timelines; copy a fix's command. The page's content
   security policy runs this script only (by its hash) and it loads nothing: it reads the page's
   own lanes and writes only numbers it computes, as text. */
(function () {
  "use strict";
  var MIN_SPAN = 1 / 512; /* deepest zoom, as a share of the step: the lanes are drawn at 1/12000 of it */

  function niceStep(span) {
    var raw = span / 5, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var m = [1, 2, 5, 10].find(function (k) { return k * mag >= raw; });
    return m * mag;
  }

  function fmt(ms, step) {
    var digits = Math.max(0, Math.min(6, -Math.floor(Math.log10(step))));
    return ms.toFixed(digits);
  }

  function setup(tl) {
    var ms = parseFloat(tl.getAttribute("data-ms"));
    var bar = document.getElementById(tl.id + "-zoom");
    var tickBox = tl.querySelector(".ticks");
    if (!(ms > 0) || !bar || !tickBox) return;
    var lanes = Array.prototype.slice.call(tl.querySelectorAll("svg"));
    var heights = lanes.map(function (s) { return s.viewBox.baseVal.height; });
    var label = bar.querySelector(".range");
    var view = { a: 0, b: 1 };

    function draw() {
      var w = view.b - view.a;
      lanes.forEach(function (s, k) {
        s.setAttribute("viewBox", (1000 * view.a).toFixed(4) + " 0 " + (1000 * w).toFixed(4) + " " + heights[k]);
      });
      tl.setAttribute("data-a", view.a.toFixed(6));
      tl.setAttribute("data-b", view.b.toFixed(6));
      var t0 = view.a * ms, t1 = view.b * ms, step = niceStep(t1 - t0);
      while (tickBox.firstChild) tickBox.removeChild(tickBox.firstChild);
      for (var t = Math.ceil(t0 / step - 1e-9) * step; t <= t1 + step * 1e-6; t += step) {
        var x = (t - t0) / (t1 - t0), span = document.createElement("span");
        span.textContent = fmt(t, step) + " ms";
        span.style.left = (100 * x).toFixed(2) + "%";
        span.className = x < 0.03 ? "first" : x > 0.97 ? "last" : "";
        tickBox.appendChild(span);
      }
      label.textContent = fmt(t0, (t1 - t0) / 100) + " \u2013 " + fmt(t1, (t1 - t0) / 100) + " ms of " +
        Number(ms.toPrecision(3)) + " ms";
      tl.classList.toggle("zoomed", w < 1);
    }

    function show(a, w) { /* the range [a, a + w), kept inside the step */
      w = Math.min(1, Math.max(MIN_SPAN, w));
      a = Math.min(1 - w, Math.max(0, a));
      view.a = a;
      view.b = a + w;
      draw();
    }

    function zoom(factor, at) { /* at: where in the visible range (0..1) stays in place */
      var w = view.b - view.a, nw = Math.min(1, Math.max(MIN_SPAN, w * factor));
      show(view.a + at * (w - nw), nw);
    }

    function pan(share) { show(view.a + share * (view.b - view.a), view.b - view.a); }

    function where(e) { /* the pointer's place along the lanes, 0..1 */
      var r = lanes[0].getBoundingClientRect();
      return Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
    }

    tl.addEventListener("wheel", function (e) {
      if (!e.target.closest || !e.target.closest("svg")) return;
      var sideways = Math.abs(e.deltaX) > Math.abs(e.deltaY) || e.shiftKey;
      if (sideways) {
        pan((e.deltaX || e.deltaY) / lanes[0].getBoundingClientRect().width);
      } else if (e.deltaY > 0 && view.b - view.a >= 1) {
        return; /* the whole step already: the page scrolls on */
      } else {
        zoom(Math.pow(2, e.deltaY / 300), where(e));
      }
      e.preventDefault();
    }, { passive: false });

    var drag = null;
    tl.addEventListener("pointerdown", function (e) {
      if (e.button !== 0 || !e.target.closest || !e.target.closest("svg")) return;
      drag = { x: e.clientX, a: view.a, width: lanes[0].getBoundingClientRect().width };
      tl.setPointerCapture(e.pointerId);
      tl.classList.add("dragging");
      e.preventDefault();
    });
    tl.addEventListener("pointermove", function (e) {
      if (!drag) return;
      var w = view.b - view.a;
      show(drag.a - (e.clientX - drag.x) / drag.width * w, w);
    });
    function stop() { drag = null; tl.classList.remove("dragging"); }
    tl.addEventListener("pointerup", stop);
    tl.addEventListener("pointercancel", stop);

    var actions = {
      "in": function () { zoom(0.5, 0.5); }, "out": function () { zoom(2, 0.5); },
      "earlier": function () { pan(-0.25); }, "later": function () { pan(0.25); },
      "all": function () { show(0, 1); }
    };
    var keys = { "+": "in", "=": "in", "-": "out", "ArrowLeft": "earlier", "ArrowRight": "later", "0": "all" };
    bar.addEventListener("click", function (e) {
      var b = e.target.closest && e.target.closest("button[data-zoom]");
      if (b && actions[b.getAttribute("data-zoom")]) actions[b.getAttribute("data-zoom")]();
    });
    tl.addEventListener("keydown", function (e) {
      if (keys[e.key] && !e.ctrlKey && !e.metaKey && !e.altKey) {
        actions[keys[e.key]]();
        e.preventDefault();
      }
    });
    tl.tabIndex = 0;
    bar.hidden = false;
    draw();
  }

  function copier(button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      var range = document.createRange();
      range.selectNodeContents(source);
      var sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      function done(ok) { button.textContent = ok ? "copied" : "selected: Ctrl+C copies it"; }
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(source.textContent).then(function () { done(true); }, function () { done(false); });
      } else {
        done(false);
      }
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll(".tl[data-ms]"), setup);
  Array.prototype.forEach.call(document.querySelectorAll("button[data-copy]"), copier);
})();
