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
  var key = keyMode ? window.agentSessionsKey.get() : "";
  window.agentSessionsKey.bar(config.mode);

  var props = {
    fetcher: GraphiQL.createFetcher({ url: location.origin + location.pathname }),
    defaultQuery: config.defaultQuery,
    plugins: [GraphiQLPluginExplorer.explorerPlugin()],
    isHeadersEditorEnabled: true,
    // The key is kept by key.js; GraphiQL's own storage would keep a stale copy.
    shouldPersistHeaders: false,
    defaultEditorToolsVisibility: keyMode ? "headers" : false,
  };
  if (key) props.headers = JSON.stringify({ Authorization: "Bearer " + key }, null, 2);
  ReactDOM.createRoot(container).render(React.createElement(GraphiQL, props));
})();
