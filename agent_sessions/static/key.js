// The API key for key mode, shared by the GraphiQL and API docs pages: taken from the URL
// fragment (#key=ask_...) or typed once into the bar at the top, and kept in this
// browser's localStorage for this server's address. Open mode needs none.
(function () {
  "use strict";
  var STORE = "agent-sessions:api-key";

  function get() {
    try {
      return localStorage.getItem(STORE) || "";
    } catch (e) {
      return "";  // storage disabled: the key is asked for again
    }
  }

  function set(key) {
    try {
      if (key) localStorage.setItem(STORE, key);
      else localStorage.removeItem(STORE);
    } catch (e) {
      /* storage disabled */
    }
  }

  // A fragment never reaches the server; it is removed from the address bar (and from
  // this history entry) once read, so the key does not linger on screen.
  var fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.has("key")) {
    set(fragment.get("key").trim());
    fragment.delete("key");
    var rest = fragment.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? "#" + rest : ""));
  }

  function text(tag, content) {
    var element = document.createElement(tag);
    element.textContent = content;
    return element;
  }

  // The bar above the page, in key mode: a field to type the key, or which key is in use.
  // onChange(key) tells the page ("" when forgotten); the page stays as it is, editors too.
  function bar(mode, onChange) {
    var element = document.getElementById("key-bar");
    if (!element || mode !== "key") return;
    element.hidden = false;
    element.textContent = "";
    var key = get();
    if (key) {
      element.appendChild(text("span", "API key " + key.slice(0, 8) + "… is sent with every request. "));
      var forget = text("button", "Forget key");
      forget.type = "button";
      forget.onclick = function () {
        set("");
        bar(mode, onChange);
        onChange("");
      };
      element.appendChild(forget);
      return;
    }
    var form = document.createElement("form");
    var label = text("label", "This server needs an API key: ");
    var input = document.createElement("input");
    input.type = "password";
    input.name = "key";
    input.placeholder = "ask_…";
    input.autocomplete = "off";
    input.required = true;
    label.appendChild(input);
    form.appendChild(label);
    form.appendChild(text("button", "Use key"));
    form.appendChild(text("span", " Kept in this browser. Or open this page as …#key=<your key>."));
    form.onsubmit = function (event) {
      event.preventDefault();
      var typed = input.value.trim();
      set(typed);
      bar(mode, onChange);
      onChange(typed);
    };
    element.appendChild(form);
  }

  window.agentSessionsKey = { get: get, set: set, bar: bar };
})();
