// turnpike developer portal: the try-it console of an operation page.
//
// Reads the form (template parameters, query parameters, headers, body),
// posts it as JSON to the portal's /console/send (which forwards it to
// this node's gateway) and shows the answer. No libraries, no inline
// handlers: the page's Content-Security-Policy allows only this file.
(function () {
  "use strict";

  var form = document.getElementById("console");
  if (!form) {
    return;
  }
  var byId = function (id) { return document.getElementById(id); };
  var sendButton = byId("console-send");
  var extraCount = 0;

  function fieldsWithPrefix(prefix) {
    var out = [];
    var inputs = form.querySelectorAll("input[name]");
    for (var i = 0; i < inputs.length; i++) {
      var name = inputs[i].getAttribute("name");
      if (name.indexOf(prefix) === 0) {
        out.push([name.slice(prefix.length), inputs[i].value]);
      }
    }
    return out;
  }

  function valueOf(list, name) {
    for (var i = 0; i < list.length; i++) {
      if (list[i][0] === name) {
        return list[i][1];
      }
    }
    return null;
  }

  // The rest of a wildcard path: each segment encoded, slashes kept.
  function encodePath(rest) {
    return rest.replace(/^\/+/, "").split("/").map(encodeURIComponent).join("/");
  }

  // The filled template: {name} from the template parameters, * from the
  // "rest of the path" field; returns [path, query pairs of the template].
  function filled() {
    var params = fieldsWithPrefix("param:");
    var path = form.getAttribute("data-template") || "/";
    path = path.replace(/\{\*?([^}]+)\}/g, function (whole, name) {
      var v = valueOf(params, name);
      return v === null ? whole : encodeURIComponent(v);
    });
    var rest = valueOf(params, "*");
    if (/\*$/.test(path)) {
      path = path.replace(/\/?\*$/, rest ? "/" + encodePath(rest) : "/");
    }
    if (path.charAt(0) !== "/") {
      path = "/" + path;
    }
    var query = [];
    var qt = form.getAttribute("data-query-template") || "";
    qt.split("&").forEach(function (part) {
      if (!part) { return; }
      var eq = part.indexOf("=");
      var key = eq === -1 ? part : part.slice(0, eq);
      var val = eq === -1 ? "" : part.slice(eq + 1);
      var m = /^\{([^}]+)\}$/.exec(val);
      if (m) {
        var v = valueOf(params, m[1]);
        val = v === null ? "" : v;
      }
      query.push([decodeURIComponent(key), val]);
    });
    return [path, query];
  }

  function pairsOf(kind) {
    var out = fieldsWithPrefix(kind + ":").filter(function (p) { return p[1] !== ""; });
    var rows = form.querySelectorAll(".extra-row[data-kind='" + kind + "']");
    for (var i = 0; i < rows.length; i++) {
      var k = rows[i].querySelector(".extra-name").value.trim();
      if (k) {
        out.push([k, rows[i].querySelector(".extra-value").value]);
      }
    }
    return out;
  }

  function method() {
    var select = byId("console-method");
    return select ? select.value : form.getAttribute("data-method");
  }

  function preview() {
    var f = filled();
    var query = f[1].concat(pairsOf("query"));
    var qs = query.map(function (p) {
      return encodeURIComponent(p[0]) + "=" + encodeURIComponent(p[1]);
    }).join("&");
    byId("console-preview").textContent = method() + " " + f[0] + (qs ? "?" + qs : "");
  }

  function addRow(kind) {
    extraCount += 1;
    var container = form.querySelector(".extra-rows[data-kind='" + kind + "']");
    var row = document.createElement("div");
    row.className = "extra-row";
    row.setAttribute("data-kind", kind);
    var what = kind === "query" ? "Query parameter" : "Header";
    var parts = [["extra-name", "name"], ["extra-value", "value"]];
    var first = null;
    parts.forEach(function (p) {
      var id = "console-extra-" + extraCount + "-" + p[1];
      var label = document.createElement("label");
      label.setAttribute("for", id);
      label.className = "sr-only";
      label.textContent = what + " " + extraCount + " " + p[1];
      var input = document.createElement("input");
      input.type = "text";
      input.id = id;
      input.className = p[0];
      input.placeholder = p[1];
      input.autocomplete = "off";
      input.spellcheck = false;
      row.appendChild(label);
      row.appendChild(input);
      if (!first) { first = input; }
    });
    var remove = document.createElement("button");
    remove.type = "button";
    remove.className = "secondary small";
    remove.textContent = "Remove";
    remove.setAttribute("aria-label", "Remove " + what.toLowerCase() + " " + extraCount);
    remove.addEventListener("click", function () {
      row.parentNode.removeChild(row);
      preview();
    });
    row.appendChild(remove);
    container.appendChild(row);
    first.focus();
  }

  function pretty(text, headers) {
    var type = "";
    headers.forEach(function (h) {
      if (h[0].toLowerCase() === "content-type") { type = h[1].toLowerCase(); }
    });
    if (type.indexOf("json") !== -1) {
      try {
        return JSON.stringify(JSON.parse(text), null, 2);
      } catch (e) {
        return text;
      }
    }
    return text;
  }

  function showError(message) {
    byId("console-idle").hidden = true;
    byId("console-output").hidden = true;
    var err = byId("console-error");
    err.textContent = message;
    err.hidden = false;
  }

  function show(r) {
    byId("console-idle").hidden = true;
    byId("console-error").hidden = true;
    var status = byId("console-status");
    status.textContent = String(r.status);
    var cls = r.status < 300 ? "ok" : r.status < 400 ? "redirect" : r.status < 500 ? "client" : "server";
    status.className = "status " + cls;
    byId("console-time").textContent = r.elapsedMs + " ms";
    byId("console-headers").textContent = (r.headers || []).map(function (h) {
      return h[0] + ": " + h[1];
    }).join("\n");
    byId("console-response").textContent = pretty(r.body || "", r.headers || []);
    byId("console-truncated").hidden = !r.truncated;
    byId("console-output").hidden = false;
  }

  function send() {
    var f = filled();
    var bodyField = byId("console-body");
    var payload = {
      apiId: form.getAttribute("data-api"),
      operationId: form.getAttribute("data-operation"),
      method: method(),
      path: f[0],
      query: f[1].concat(pairsOf("query")),
      headers: pairsOf("header"),
      body: bodyField ? bodyField.value : null
    };
    var token = form.querySelector("input[name='csrf']").value;
    sendButton.disabled = true;
    sendButton.textContent = "Sending…";
    form.setAttribute("aria-busy", "true");
    fetch("/console/send", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": token },
      body: JSON.stringify(payload)
    }).then(function (resp) {
      return resp.text().then(function (text) {
        var data = null;
        try { data = JSON.parse(text); } catch (e) { data = null; }
        if (resp.ok && data) {
          show(data);
        } else {
          showError((data && data.error) || ("The portal answered " + resp.status + "."));
        }
      });
    }).catch(function () {
      showError("The request could not be sent. Check your connection and try again.");
    }).then(function () {
      sendButton.disabled = false;
      sendButton.textContent = "Send";
      form.removeAttribute("aria-busy");
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    send();
  });
  form.addEventListener("input", preview);
  form.addEventListener("change", preview);
  byId("console-add-query").addEventListener("click", function () { addRow("query"); });
  byId("console-add-header").addEventListener("click", function () { addRow("header"); });
  preview();
})();
