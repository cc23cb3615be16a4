// Swagger UI for /api/openapi.json, from the scripts the server ships (static/vendor/).
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("docs-config").textContent);
  var container = document.getElementById("swagger-ui");
  if (typeof SwaggerUIBundle === "undefined") {
    container.textContent =
      "Swagger UI's scripts did not load from /static/vendor/: reinstall agent-sessions.";
    return;
  }
  var key = config.mode === "key" ? window.agentSessionsKey.get() : "";
  container.textContent = "";
  window.ui = SwaggerUIBundle({
    url: config.url,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    validatorUrl: null,  // the default asks a public validator about the document
    tryItOutEnabled: true,
    onComplete: function () {
      if (key) window.ui.preauthorizeApiKey("bearer", key);
    },
  });
  window.agentSessionsKey.bar(config.mode, function (typed) {
    if (typed) window.ui.preauthorizeApiKey("bearer", typed);
    else window.ui.authActions.logout(["bearer"]);
  });
})();
