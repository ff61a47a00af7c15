// The upload page's script: replaces the plain one-file form with buttons that open the
// file pickers, sends one request per file so one failure never costs the others, shows a
// progress bar per file and the server's own sentence for every outcome.
"use strict";
(function () {
  var base = location.pathname.replace(/\/+$/, "");
  var list = document.getElementById("files");
  var done = document.getElementById("done");
  var status = document.getElementById("status");
  var remaining = document.getElementById("remaining");
  var active = 0;

  document.getElementById("plain").hidden = true;
  document.getElementById("enhanced").hidden = false;

  function row(name) {
    var li = document.createElement("li");
    var n = document.createElement("div");
    n.className = "name";
    n.textContent = name;
    var bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", "Sending " + name);
    var msg = document.createElement("div");
    msg.textContent = "Sending…";
    li.appendChild(n);
    li.appendChild(bar);
    li.appendChild(msg);
    list.appendChild(li);
    return { li: li, bar: bar, msg: msg };
  }

  function answer(xhr) {
    try {
      var body = JSON.parse(xhr.responseText);
      return body.message || body.detail || "";
    } catch (e) {
      return "";
    }
  }

  function send(file) {
    var r = row(file.name);
    var form = new FormData();
    form.append("file", file, file.name);
    var xhr = new XMLHttpRequest();
    xhr.open("POST", base + "/files");
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) r.bar.value = Math.round((e.loaded / e.total) * 100);
    };
    // Every byte is out: the server now checks the file (type, scan) before it answers.
    xhr.upload.onload = function () {
      r.msg.textContent = "Checking the file…";
    };
    xhr.onload = function () {
      var ok = xhr.status === 201;
      r.bar.value = ok ? 100 : r.bar.value;
      r.msg.className = ok ? "ok" : "err";
      r.li.className = ok ? "stored" : "failed";
      if (ok) remaining.textContent = Math.max(0, Number(remaining.textContent) - 1);
      r.msg.textContent = answer(xhr) || (ok ? "Received." : "This file could not be sent. Please try again.");
      finished(ok);
    };
    xhr.onerror = xhr.ontimeout = function () {
      r.msg.className = "err";
      r.li.className = "failed";
      r.msg.textContent = "The connection was lost. Please check your signal and try again.";
      finished(false);
    };
    active += 1;
    xhr.send(form);
  }

  function finished(ok) {
    active -= 1;
    if (ok) done.hidden = false;
  }

  [["picker", "picker-button"], ["camera", "camera-button"]].forEach(function (ids) {
    var input = document.getElementById(ids[0]);
    var button = document.getElementById(ids[1]);
    if (!input || !button) return;
    button.addEventListener("click", function () {
      input.click();
    });
    input.addEventListener("change", function () {
      Array.prototype.forEach.call(input.files, send);
      input.value = "";
    });
  });

  // After "done" the page holds only the thank-you: nothing left to press.
  function thanked(text) {
    var main = document.querySelector("main");
    while (main.firstChild) main.removeChild(main.firstChild);
    var h = document.createElement("h1");
    h.textContent = "Thank you";
    var p = document.createElement("p");
    p.setAttribute("role", "status");
    p.textContent = text;
    main.appendChild(h);
    main.appendChild(p);
  }

  done.addEventListener("click", function () {
    if (active > 0 && !window.confirm("Some files are still being sent and would be lost. Finish anyway?")) {
      return;
    }
    var xhr = new XMLHttpRequest();
    xhr.open("POST", base + "/done");
    xhr.onload = function () {
      var text = answer(xhr);
      if (xhr.status === 200) {
        thanked(text || "Thank you.");
      } else {
        status.textContent = text || "Something went wrong. Please try again.";
      }
    };
    xhr.onerror = function () {
      status.textContent = "The connection was lost. Please check your signal and try again.";
    };
    xhr.send();
  });
})();
