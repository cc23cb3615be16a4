// GraphiQL for agent-sessions, from the scripts the server ships (static/vendor/): the
// example query, the explorer, and in key mode the Authorization header filled in.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("graphiql-config").textContent);
  var container = document.getElementById("graphiql");
  if (typeof React === "undefined" || typeof GraphiQL === "undefined") {
    container.textContent =
      "GraphiQL's scripts did not load from /static/vendor/: reinstall agent-sessions.";
    return;
  }
  var keyMode = config.mode === "key";
  var root = ReactDOM.createRoot(container);
  var explorer = GraphiQLPluginExplorer.explorerPlugin();
  var fetcher = GraphiQL.createFetcher({ url: location.origin + location.pathname });

  function render(key) {
    var props = {
      fetcher: fetcher,
      defaultQuery: config.defaultQuery,
      plugins: [explorer],
      isHeadersEditorEnabled: true,
      // The key is kept by key.js; GraphiQL's own storage would keep a stale copy.
      shouldPersistHeaders: false,
      defaultEditorToolsVisibility: keyMode ? "headers" : false,
      // A new key replaces the headers editor's contents; the query stays as it is.
      headers: key ? JSON.stringify({ Authorization: "Bearer " + key }, null, 2) : "",
    };
    root.render(React.createElement(GraphiQL, props));
  }

  window.agentSessionsKey.bar(config.mode, render);
  render(keyMode ? window.agentSessionsKey.get() : "");
})();
