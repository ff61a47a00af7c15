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

  // Files go by tus (docs/api.md): created, then sent in chunks, each acknowledged by the
  // server. When the network drops, the row says it waits and resumes by itself from the
  // offset the server reports (nothing acknowledged is sent again); after a while without
  // a network it offers a button too.
  var CHUNK = 512 * 1024;
  var DELAYS = [1000, 2000, 4000, 8000, 15000, 30000];
  var BY_HAND_AFTER = 3;

  function b64(s) {
    return btoa(unescape(encodeURIComponent(s)));
  }

  function tusRequest(method, url) {
    var xhr = new XMLHttpRequest();
    xhr.open(method, url);
    xhr.setRequestHeader("Tus-Resumable", "1.0.0");
    xhr.setRequestHeader("Accept-Language", lang);
    return xhr;
  }

  function send(file) {
    var r = row(file.name);
    var up = { url: null, offset: 0, tries: 0, timer: null, retry: null, over: false };
    active += 1;

    function progress() {
      r.bar.value = file.size ? Math.floor((up.offset / file.size) * 100) : 0;
    }

    function say(words, cls) {
      r.msg.className = cls || "";
      r.msg.textContent = words;
    }

    // Network trouble: wait with backoff (or until the browser is back online), then go on.
    function later(next) {
      say(text.waiting);
      var delay = DELAYS[Math.min(up.tries, DELAYS.length - 1)];
      up.tries += 1;
      if (up.tries >= BY_HAND_AFTER && !up.retry) {
        up.retry = document.createElement("button");
        up.retry.type = "button";
        up.retry.className = "button";
        up.retry.textContent = text.retry;
        up.retry.addEventListener("click", go);
        r.li.appendChild(up.retry);
      }
      function go() {
        window.removeEventListener("online", go);
        clearTimeout(up.timer);
        if (up.retry) {
          up.retry.remove();
          up.retry = null;
        }
        if (!up.over) next();
      }
      window.addEventListener("online", go);
      up.timer = setTimeout(go, delay);
    }

    function end(ok, words) {
      up.over = true;
      r.msg.className = ok ? "ok" : "err";
      r.li.className = ok ? "stored" : "failed";
      r.msg.textContent = words;
      if (ok) {
        r.bar.value = 100;
        remaining.textContent = Math.max(0, Number(remaining.textContent) - 1);
      }
      finished(ok);
    }

    function refused(xhr) {
      end(false, answer(xhr) || text.notSent);
    }

    function create() {
      var xhr = tusRequest("POST", base + "/tus");
      xhr.setRequestHeader("Upload-Length", String(file.size));
      xhr.setRequestHeader("Upload-Metadata", "filename " + b64(file.name));
      xhr.onload = function () {
        if (xhr.status !== 201) return refused(xhr);
        up.url = xhr.getResponseHeader("Location");
        up.offset = 0;
        up.tries = 0;
        patch();
      };
      xhr.onerror = xhr.ontimeout = function () {
        later(create);
      };
      xhr.send();
    }

    function patch() {
      var stop = Math.min(file.size, up.offset + CHUNK);
      var last = stop === file.size;
      var xhr = tusRequest("PATCH", up.url);
      xhr.setRequestHeader("Upload-Offset", String(up.offset));
      xhr.setRequestHeader("Content-Type", "application/offset+octet-stream");
      say(text.sending);
      // The last chunk is out: the server now checks the file (type, scan) before it answers.
      if (last) {
        xhr.upload.onload = function () {
          say(text.checking);
        };
      }
      xhr.onload = function () {
        if (xhr.status === 204 || xhr.status === 409) {
          up.offset = Number(xhr.getResponseHeader("Upload-Offset"));
          up.tries = 0;
          progress();
          if (up.offset >= file.size) return end(true, fill(text.receivedName, file.name));
          return patch();
        }
        // Unknown here (it expired, or began on another gateway): start the file again.
        if (xhr.status === 404) return create();
        refused(xhr);
      };
      xhr.onerror = xhr.ontimeout = function () {
        later(resume);
      };
      xhr.send(file.slice(up.offset, stop));
    }

    // After a cut: ask the server how much it has, and go on from there.
    function resume() {
      var xhr = tusRequest("HEAD", up.url);
      xhr.onload = function () {
        if (xhr.status === 200) {
          up.offset = Number(xhr.getResponseHeader("Upload-Offset"));
          progress();
          return patch();
        }
        if (xhr.status === 404) return create();
        refused(xhr);
      };
      xhr.onerror = xhr.ontimeout = function () {
        later(resume);
      };
      xhr.send();
    }

    create();
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
