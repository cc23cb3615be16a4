"""What a browser gets: the home page, GraphiQL and the API docs, and the start-up lines
that say where they are. Every script and style sheet is served from the package itself
(``static/``), so the pages work on a machine without internet."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from agent_sessions import __version__
from agent_sessions.rest.responses import JSONResponse
from agent_sessions.settings import Settings
from agent_sessions.storage import Storage

STATIC_DIR = Path(__file__).parent / "static"
DESCRIPTION = (
    "Stores conversations between users and AI agents (messages, runs, the retrieved "
    "context that grounded each answer) and serves them over GraphQL and REST."
)
# Paths below the server's root; pages link to them relatively, so a mount prefix holds.
LINKS = {
    "graphiql": "graphql",
    "apiDocs": "docs",
    "openapi": "api/openapi.json",
    "healthz": "healthz",
}

# The query GraphiQL opens with: the session list and, for each session, the chat view with
# its citations. It answers on an empty database too (totalCount 0).
EXAMPLE_QUERY = """\
# Welcome to agent-sessions. Run this with the pink
# button (or Ctrl-Enter): the newest sessions, their last
# messages, and the chunks that grounded each answer.
# Docs (top left) describes every type and field;
# Ctrl-Space completes. One session's chat view:
#   session(id: "...") { messages(last: 20) { nodes {
#     role content retrievedContext { sourceName } } } }
query RecentSessions {
  viewer { userId isAdmin }
  sessions(first: 5) {
    totalCount
    nodes {
      id
      agentId
      updatedAt
      messageCount
      messages(last: 10) {
        nodes {
          role
          content
          createdAt
          retrievedContext { sourceName score text }
        }
      }
    }
  }
}
"""


def static_files() -> Mount:
    return Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static")


def redacted_uri(uri: str) -> str:
    """A MongoDB URI as it may be shown: no user name, password or options."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return "(unparsable URI)"
    hosts, _, path = rest.partition("/")
    hosts = hosts.rsplit("@", 1)[-1]
    database = path.split("?", 1)[0]
    return f"{scheme}://{hosts}/{database}"


def database_facts(settings: Settings, storage: Storage | None) -> dict[str, Any]:
    """Which database the server uses, without credentials."""
    if storage is not None and storage.embedded is not None:
        return {"kind": "embedded", "dataDir": str(storage.embedded.data_dir)}
    if settings.mongodb_uri:
        return {"kind": "mongodb", "uri": redacted_uri(settings.mongodb_uri)}
    if storage is None:  # not opened yet: serve opens the embedded one of data_dir
        return {"kind": "embedded", "dataDir": str(settings.data_dir)}
    return {"kind": "mongodb", "uri": None}  # a client handed in by the caller (tests)


def _mode(settings: Settings) -> str:
    return "key" if settings.auth_enabled else "open"


def _accepts_json(request: Request) -> bool:
    """Whether the client prefers JSON to HTML (``Accept`` with q-values; a tie is HTML)."""
    best: dict[str, tuple[int, float]] = {}  # media type -> (specificity, q)
    for part in request.headers.get("accept", "").split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        for wanted in ("text/html", "application/json"):
            kind = wanted.split("/")[0]
            specificity = {wanted: 2, f"{kind}/*": 1, "*/*": 0}.get(media.lower())
            if specificity is not None and specificity >= best.get(wanted, (-1, 0.0))[0]:
                best[wanted] = (specificity, q)
    return best.get("application/json", (0, 0.0))[1] > best.get("text/html", (0, 0.0))[1]


def home_facts(request: Request) -> dict[str, Any]:
    services = request.app.state.services
    settings: Settings = services.settings
    base = str(request.base_url)
    database = database_facts(settings, services._storage)
    if settings.auth_enabled and database["kind"] == "mongodb":
        # The page needs no key: in key mode it does not tell strangers where the data is.
        database = {"kind": "mongodb", "uri": None}
    return {
        "name": "agent-sessions",
        "version": __version__,
        "description": DESCRIPTION,
        "mode": _mode(settings),
        "database": database,
        "links": {name: base + path for name, path in LINKS.items()},
    }


def _page(title: str, body: str, head: str = "") -> str:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n"
        '<link rel="icon" href="data:,">\n'  # no favicon request
        f"{head}</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def _json_script(element_id: str, value: Any) -> str:
    """A value for the page's script, in a JSON block that no string can close early."""
    text = json.dumps(value).replace("<", "\\u003c")
    return f'<script id="{element_id}" type="application/json">{text}</script>\n'


def _database_text(database: dict[str, Any]) -> str:
    if database["kind"] == "embedded":
        return f"embedded (SecantusDB), data in {database['dataDir']}"
    return f"MongoDB at {database['uri']}" if database["uri"] else "MongoDB"


MODE_TEXT = {
    "open": "open: no admin key is set, so every request acts as the administrator "
    "<code>local</code> (loopback only)",
    "key": "key: every request but this page, GraphiQL's and the API docs' carries "
    "<code>Authorization: Bearer &lt;key&gt;</code>",
}


async def home(request: Request) -> Response:
    """``/``: what this server is and where its surfaces are; JSON when asked for JSON."""
    facts = home_facts(request)
    if _accepts_json(request):
        return JSONResponse(facts, headers={"Vary": "Accept"})
    e = html.escape
    links = facts["links"]
    items = [
        ("GraphiQL", links["graphiql"], "explore and query the GraphQL API in the browser"),
        ("API docs", links["apiDocs"], "the REST paths, with their shapes, to try out"),
        ("OpenAPI document", links["openapi"], "the REST API as OpenAPI 3.1 JSON"),
        ("Health", links["healthz"], '<code>{"status": "ok"}</code> when the database answers'),
    ]
    key_hint = (
        "<p>Open GraphiQL as <code>/graphql#key=&lt;your key&gt;</code> to fill in the key "
        "(or type it there once); <code>agent-sessions keys create --user ID</code> makes one.</p>"
        if facts["mode"] == "key"
        else ""
    )
    body = (
        "<main>\n<h1>agent-sessions <small>" + e(facts["version"]) + "</small></h1>\n"
        f"<p>{e(facts['description'])}</p>\n"
        "<table>\n"
        f"<tr><th>Mode</th><td>{MODE_TEXT[facts['mode']]}</td></tr>\n"
        f"<tr><th>Database</th><td>{e(_database_text(facts['database']))}</td></tr>\n"
        "</table>\n<ul>\n"
        + "".join(
            f'<li><a href="{e(url)}">{e(name)}</a>: {text}</li>\n' for name, url, text in items
        )
        + f"</ul>\n{key_hint}"
        "<p>This page is also JSON: <code>curl -H 'Accept: application/json' "
        + e(str(request.base_url))
        + "</code></p>\n</main>"
    )
    head = '<link rel="stylesheet" href="static/home.css">\n'
    return HTMLResponse(_page("agent-sessions", body, head), headers={"Vary": "Accept"})


def graphiql(request: Request) -> HTMLResponse:
    """The GraphiQL page for ``GET /graphql`` in a browser; it holds no data."""
    settings: Settings = request.app.state.services.settings
    config = {"mode": _mode(settings), "defaultQuery": EXAMPLE_QUERY, "version": __version__}
    head = (
        '<link rel="stylesheet" href="static/vendor/graphiql/graphiql.min.css">\n'
        '<link rel="stylesheet" href="static/vendor/graphiql-plugin-explorer/style.css">\n'
        '<link rel="stylesheet" href="static/graphiql.css">\n'
    )
    body = (
        '<div id="key-bar" hidden></div>\n'
        '<div id="graphiql">Loading GraphiQL… (if this stays, the scripts under '
        "/static/ did not load: see the server log)</div>\n"
        + _json_script("graphiql-config", config)
        + '<script src="static/vendor/react/react.production.min.js"></script>\n'
        '<script src="static/vendor/react/react-dom.production.min.js"></script>\n'
        '<script src="static/vendor/graphiql/graphiql.min.js"></script>\n'
        '<script src="static/vendor/graphiql-plugin-explorer/index.umd.js"></script>\n'
        '<script src="static/key.js"></script>\n'
        '<script src="static/graphiql.js"></script>'
    )
    return HTMLResponse(_page("agent-sessions · GraphiQL", body, head))


async def api_docs(request: Request) -> HTMLResponse:
    """``/docs``: Swagger UI for ``/api/openapi.json``."""
    settings: Settings = request.app.state.services.settings
    config = {"mode": _mode(settings), "url": "api/openapi.json"}
    head = (
        '<link rel="stylesheet" href="static/vendor/swagger-ui/swagger-ui.css">\n'
        '<link rel="stylesheet" href="static/docs.css">\n'
    )
    body = (
        '<div id="key-bar" hidden></div>\n'
        '<div id="swagger-ui">Loading the API docs…</div>\n'
        + _json_script("docs-config", config)
        + '<script src="static/vendor/swagger-ui/swagger-ui-bundle.js"></script>\n'
        '<script src="static/key.js"></script>\n'
        '<script src="static/docs.js"></script>'
    )
    return HTMLResponse(_page("agent-sessions · API docs", body, head))


def _display_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"  # reachable here; the log line says it listens on all addresses
    return f"[{host}]" if ":" in host else host


def _agent_text(agent_id: str, agent: Any) -> str:
    url = str(agent.base_url if agent.backend == "openai" else agent.url)
    return f"{agent_id} ({agent.backend}, {_public_url(url)})"


def _public_url(url: str) -> str:
    """A backend URL as it may be logged: no user name, password or query."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    return f"{scheme}{sep}{netloc.rsplit('@', 1)[-1]}{slash}{path.split('?', 1)[0]}"


def startup_lines(settings: Settings, storage: Storage | None) -> list[str]:
    """What the server says when it is ready: where each surface is, the data, the mode,
    the agents (never their keys)."""
    base = f"http://{_display_host(settings.host)}:{settings.port}/"
    listening = " (listening on all addresses)" if settings.host in ("0.0.0.0", "::") else ""
    database = database_facts(settings, storage)
    if database["kind"] == "embedded":
        data = f"data directory: {database['dataDir']} (embedded database)"
    else:
        data = f"database: {database['uri'] or 'MongoDB'} (MONGODB_URI)"
    if settings.auth_enabled:
        mode = "mode: key (AGENT_SESSIONS_ADMIN_KEY is set; send Authorization: Bearer <key>)"
    else:
        mode = "mode: open (no AGENT_SESSIONS_ADMIN_KEY; each request is the administrator 'local')"
    agents = ", ".join(_agent_text(i, a) for i, a in sorted(settings.agents.items()))
    return [
        f"agent-sessions {__version__} ready at {base}{listening}",
        f"GraphiQL: {base}graphql" + ("#key=<your key>" if settings.auth_enabled else ""),
        f"API docs: {base}docs (OpenAPI document: {base}api/openapi.json)",
        data,
        mode,
        "agents: " + (agents or "none (declare them under [agents.<id>] in the config file)"),
    ]


routes: list[BaseRoute] = [
    Route("/", home, methods=["GET"]),
    Route("/docs", api_docs, methods=["GET"]),
    static_files(),
]
