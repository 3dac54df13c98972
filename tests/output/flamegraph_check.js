/* Driven by flamegraph_check.html; see there. */
"use strict";
var results = document.getElementById("results");
function report(line) { results.textContent += line + "\n"; }

function run(name, fn) {
  try {
    var why = fn();
    report(why ? "FAIL " + name + ": " + why : "ok " + name);
  } catch (e) {
    report("FAIL " + name + ": exception " + e);
  }
}

/* Made here, not in the HTML: the listener must be there before the load
 * can happen. */
var frame = document.createElement("iframe");
frame.width = 1200;
frame.height = 300;
frame.addEventListener("load", function () {
  var win = this.contentWindow, doc = this.contentDocument;
  var PAD = 10, AVAIL = 1180, HIGHLIGHT = "rgb(230,0,230)";

  if (!doc) {
    report("FAIL load: cannot reach the SVG document (file access?)");
    report("done");
    return;
  }
  /* Frames by name (the <title> before " ("); several may share one. */
  function frames(name) {
    return Array.prototype.filter.call(doc.querySelectorAll("g.f"),
        function (g) {
          var t = g.querySelector("title").textContent;
          return t.slice(0, t.lastIndexOf(" (")) === name;
        });
  }
  function rect(g) { return g.querySelector("rect"); }
  function num(g, attr) { return Number(rect(g).getAttribute(attr)); }
  function near(a, b) { return Math.abs(a - b) < 0.02; }
  function fire(target, type, init) {
    var Ctor = type.indexOf("key") === 0 ? win.KeyboardEvent : win.MouseEvent;
    init = init || {};
    init.bubbles = true;
    target.dispatchEvent(new Ctor(type, init));
  }
  function text(id) { return doc.getElementById(id).textContent; }
  function highlighted() {
    return Array.prototype.filter.call(doc.querySelectorAll("g.f rect"),
        function (r) { return r.getAttribute("fill") === HIGHLIGHT; }).length;
  }
  function hidden(g) { return win.getComputedStyle(g).display === "none"; }

  var original = Array.prototype.map.call(doc.querySelectorAll("g.f rect"),
      function (r) { return r.getAttribute("x") + "/" + r.getAttribute("width"); });
  function layoutRestored() {
    var now = Array.prototype.map.call(doc.querySelectorAll("g.f rect"),
        function (r) { return r.getAttribute("x") + "/" + r.getAttribute("width"); });
    return now.join() === original.join();
  }

  run("renders", function () {
    if (doc.documentElement.localName !== "svg") return "not an SVG document";
    if (doc.getElementsByTagName("parsererror").length) return "XML error";
    var gs = doc.querySelectorAll("g.f");
    if (gs.length !== 14) return gs.length + " frames, expected 14";
    var root = frames("all")[0];
    if (!root || !near(num(root, "width"), AVAIL)) return "root not full width";
    var box = rect(frames("handle (app.lua:12)")[0]).getBBox();
    if (!near(box.width, AVAIL / 2)) return "handle is " + box.width + "px wide";
    if (text("title") !== "luaspy test <graph>") return "title: " + text("title");
  });

  run("hostile names stay text", function () {
    if (doc.querySelectorAll("script").length !== 1) return "extra <script>";
    if (win.pwned !== undefined) return "injected script ran";
    if (frames("<script>alert(1)</script> (evil.lua:1)").length !== 1)
      return "<script> name not shown as text";
    if (frames("]]><script>window.pwned=2</script>").length !== 1)
      return "]]> name not shown as text";
    if (frames("bad \ufffd\ufffd utf8 (evil.lua:3)").length !== 1)
      return "invalid UTF-8 not replaced by U+FFFD";
  });

  run("hover shows details", function () {
    fire(rect(frames("handle (app.lua:12)")[0]), "mouseover");
    var want = "handle (app.lua:12) (60 samples, 50.00%)";
    if (text("details") !== want) return "details: '" + text("details") + "'";
    fire(rect(frames("handle (app.lua:12)")[0]), "mouseout");
    if (text("details") !== "") return "details kept after mouseout";
  });

  run("search by Ctrl-F highlights matches", function () {
    win.prompt = function () { return "heavy"; };
    fire(doc, "keydown", {key: "f", ctrlKey: true});
    if (highlighted() !== 3) return highlighted() + " highlighted, expected 3";
    /* 50 under handle, 10 under main; the nested one counts once. */
    if (text("matched") !== "Matched: 50.00%") return text("matched");
    if (text("search") !== "Reset Search") return "button: " + text("search");
  });

  run("search regex, then reset", function () {
    win.flamegraph.search("^C:|^\\[GC\\]$");
    if (highlighted() !== 2) return highlighted() + " highlighted, expected 2";
    if (text("matched") !== "Matched: 16.67%") return text("matched");
    fire(doc.getElementById("search"), "click"); /* Reset Search */
    if (highlighted() !== 0) return "highlight kept after reset";
    if (text("matched") !== "") return "matched text kept after reset";
  });

  run("click zooms into a frame", function () {
    var handle = frames("handle (app.lua:12)")[0];
    fire(rect(handle), "click");
    if (!near(num(handle, "x"), PAD) || !near(num(handle, "width"), AVAIL))
      return "handle not full width";
    var heavy = frames("heavy (work.lua:7)").filter(function (g) {
      return g.getAttribute("data-d") === "3";
    })[0];
    if (!near(num(heavy, "width"), AVAIL * 50 / 60)) return "child not scaled";
    if (!hidden(frames("[GC]")[0])) return "[GC] still shown";
    if (!hidden(frames("trace#3 (work.lua:20)")[0])) return "sibling shown";
    var main = frames("main chunk (app.lua:40)")[0];
    if (hidden(main) || !near(num(main, "width"), AVAIL)) return "parent hidden";
    if (!main.classList.contains("parent")) return "parent not dimmed";
    if (hidden(doc.getElementById("unzoom"))) return "no Reset Zoom";
    if (heavy.querySelector("text").textContent !== "heavy (work.lua:7)")
      return "label not refitted";
  });

  run("Reset Zoom restores the layout", function () {
    fire(doc.getElementById("unzoom"), "click");
    if (!layoutRestored()) return "layout differs";
    if (hidden(frames("[GC]")[0])) return "[GC] still hidden";
    if (!hidden(doc.getElementById("unzoom"))) return "Reset Zoom still shown";
  });

  run("Escape resets zoom and search", function () {
    fire(rect(frames("trace#3 (work.lua:20)")[0]), "click");
    win.flamegraph.search("trace");
    fire(doc, "keydown", {key: "Escape"});
    if (!layoutRestored()) return "layout differs";
    if (highlighted() !== 0) return "highlight kept";
  });

  report("done");
});
frame.src = "graph.svg";
document.body.insertBefore(frame, results);
