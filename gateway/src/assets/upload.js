// The upload page: one request per file so one failure never costs the others, a progress
// bar per file, and the server's own sentence shown for every outcome.
"use strict";
(function () {
  var base = location.pathname.replace(/\/+$/, "");
  var list = document.getElementById("files");
  var done = document.getElementById("done");
  var status = document.getElementById("status");
  var remaining = document.getElementById("remaining");
  var active = 0;

  function row(name) {
    var li = document.createElement("li");
    var n = document.createElement("div");
    n.className = "name";
    n.textContent = name;
    var bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
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

  ["picker", "camera"].forEach(function (id) {
    var input = document.getElementById(id);
    if (!input) return;
    input.addEventListener("change", function () {
      Array.prototype.forEach.call(input.files, send);
      input.value = "";
    });
  });

  done.addEventListener("click", function () {
    if (active > 0) {
      status.textContent = "Please wait until every file has been sent.";
      return;
    }
    var xhr = new XMLHttpRequest();
    xhr.open("POST", base + "/done");
    xhr.onload = function () {
      status.textContent =
        answer(xhr) || (xhr.status === 200 ? "Thank you." : "Something went wrong. Please try again.");
      if (xhr.status === 200) {
        document.querySelector(".actions").hidden = true;
        done.hidden = true;
      }
    };
    xhr.send();
  });
})();
