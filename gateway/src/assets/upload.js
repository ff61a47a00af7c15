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
  // The page's sentences, in its language (a data block the server fills from its catalogue).
  var text = JSON.parse(document.getElementById("text").textContent);
  var lang = document.documentElement.lang;

  function fill(template, name) {
    return template.split("{name}").join(name);
  }

  // Answers come in the page's language, also when the caller picked it on the page.
  function request(path) {
    var xhr = new XMLHttpRequest();
    xhr.open("POST", base + path);
    xhr.setRequestHeader("Accept-Language", lang);
    return xhr;
  }

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
    bar.setAttribute("aria-label", fill(text.sendingName, name));
    var msg = document.createElement("div");
    msg.textContent = text.sending;
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
    var xhr = request("/files");
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) r.bar.value = Math.round((e.loaded / e.total) * 100);
    };
    // Every byte is out: the server now checks the file (type, scan) before it answers.
    xhr.upload.onload = function () {
      r.msg.textContent = text.checking;
    };
    xhr.onload = function () {
      var ok = xhr.status === 201;
      r.bar.value = ok ? 100 : r.bar.value;
      r.msg.className = ok ? "ok" : "err";
      r.li.className = ok ? "stored" : "failed";
      if (ok) remaining.textContent = Math.max(0, Number(remaining.textContent) - 1);
      r.msg.textContent = answer(xhr) || (ok ? text.received : text.notSent);
      finished(ok);
    };
    xhr.onerror = xhr.ontimeout = function () {
      r.msg.className = "err";
      r.li.className = "failed";
      r.msg.textContent = text.connectionLost;
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
  function thanked(sentence) {
    var main = document.querySelector("main");
    while (main.firstChild) main.removeChild(main.firstChild);
    var h = document.createElement("h1");
    h.textContent = text.thankYouTitle;
    var p = document.createElement("p");
    p.setAttribute("role", "status");
    p.textContent = sentence;
    main.appendChild(h);
    main.appendChild(p);
  }

  done.addEventListener("click", function () {
    if (active > 0 && !window.confirm(text.confirmFinish)) {
      return;
    }
    var xhr = request("/done");
    xhr.onload = function () {
      var said = answer(xhr);
      if (xhr.status === 200) {
        thanked(said || text.thankYou);
      } else {
        status.textContent = said || text.wentWrong;
      }
    };
    xhr.onerror = function () {
      status.textContent = text.connectionLost;
    };
    xhr.send();
  });
})();
