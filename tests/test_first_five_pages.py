"""The pages a new user opens first: the home page, GraphiQL's and the API docs' pages and
the files they load, the OpenAPI document's version and servers, and the start-up lines."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

import agent_sessions
from agent_sessions.app import build_app
from agent_sessions.pages import STATIC_DIR, redacted_uri, startup_lines
from agent_sessions.settings import AgentConfig, Settings
from agent_sessions.storage import Storage

ROOT = Path(__file__).resolve().parent.parent


async def test_home_page_is_html_for_a_browser(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert f"agent-sessions <small>{agent_sessions.__version__}</small>" in page
    for link in ("/graphql", "/docs", "/api/openapi.json", "/healthz"):
        assert f'href="http://localhost{link}"' in page
    assert "open:" in page


@pytest.mark.parametrize(
    "accept", ["application/json", "application/json, text/html;q=0.5", "text/html;q=0.1, */*"]
)
async def test_home_page_is_json_when_asked_for_json(
    client: httpx.AsyncClient, tmp_path: Path, accept: str
) -> None:
    response = await client.get("/", headers={"Accept": accept})
    assert response.headers["content-type"] == "application/json", accept
    assert response.headers["vary"] == "Accept"
    assert response.json() == {
        "name": "agent-sessions",
        "version": agent_sessions.__version__,
        "description": response.json()["description"],
        "mode": "open",
        # The test hands the app its storage: a MongoDB whose URI the app was not told.
        "database": {"kind": "mongodb", "uri": None},
        "links": {
            "graphiql": "http://localhost/graphql",
            "apiDocs": "http://localhost/docs",
            "openapi": "http://localhost/api/openapi.json",
            "healthz": "http://localhost/healthz",
        },
    }


async def home_facts(settings: Settings) -> dict:
    """The home page's JSON from an app on ``settings`` (its storage is never used)."""
    transport = httpx.ASGITransport(app=build_app(settings, storage=_unopened()))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
        return (await c.get("/", headers={"Accept": "application/json"})).json()


async def test_home_page_names_the_database_without_credentials(tmp_path: Path) -> None:
    uri = "mongodb://alice:s3cret@db1.internal:27017,db2.internal/sessions?authSource=admin"
    facts = await home_facts(Settings(data_dir=tmp_path, mongodb_uri=uri))
    assert facts["database"] == {
        "kind": "mongodb",
        "uri": "mongodb://db1.internal:27017,db2.internal/sessions",
    }
    # In key mode the page answers without a key, so it keeps where the data is to itself.
    facts = await home_facts(Settings(data_dir=tmp_path, mongodb_uri=uri, admin_key="k"))
    assert (facts["mode"], facts["database"]) == ("key", {"kind": "mongodb", "uri": None})
    assert "s3cret" not in str(facts)


def _unopened() -> Storage:
    """A storage object the app never talks to (the home page reads settings only)."""
    from pymongo import AsyncMongoClient

    return Storage(client=AsyncMongoClient(connect=False), database="unused")


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("mongodb://u:p@h:1/db?tls=true", "mongodb://h:1/db"),
        (
            "mongodb+srv://user:p%40ss@cluster0.example.net/?retryWrites=true",
            "mongodb+srv://cluster0.example.net/",
        ),
        ("mongodb://h", "mongodb://h/"),
        ("not a uri", "(unparsable URI)"),
    ],
)
def test_redacted_uri(uri: str, shown: str) -> None:
    assert redacted_uri(uri) == shown


async def test_graphiql_page_loads_only_files_the_server_ships(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    page = response.text
    assert "unpkg.com" not in page and "cdn" not in page.lower()
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources, page
    for source in sources:
        assert source == "data:," or source.startswith("static/"), source
        if source.startswith("static/"):
            asset = await client.get(f"/{source}")
            assert asset.status_code == 200, source
    assert "RecentSessions" in page  # the example query travels in the page's config


async def test_api_docs_page_and_its_files(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', response.text)
    assert "static/vendor/swagger-ui/swagger-ui-bundle.js" in sources
    for source in sources:
        if source.startswith("static/"):
            assert (await client.get(f"/{source}")).status_code == 200, source


def test_our_own_scripts_name_no_other_host() -> None:
    for path in STATIC_DIR.glob("*.*"):
        assert not re.search(r"https?://", path.read_text()), path


def test_every_vendored_file_is_listed_with_its_package_and_hash() -> None:
    import hashlib

    listed = {}
    for line in (STATIC_DIR / "vendor" / "VERSIONS").read_text().splitlines():
        name, package, sha = line.split("  ")
        listed[name] = (package, sha)
    on_disk = {
        str(p.relative_to(STATIC_DIR / "vendor")): p for p in (STATIC_DIR / "vendor").glob("*/*")
    }
    assert set(listed) == set(on_disk)
    for name, path in on_disk.items():
        assert listed[name][1] == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest(), (
            f"{name} differs from what scripts/vendor_static.sh fetched"
        )
    licences = (STATIC_DIR / "vendor" / "THIRD_PARTY_LICENSES.txt").read_text()
    for package in {package for package, _ in listed.values()}:
        for pin in package.split(", "):
            name, version = pin.rsplit("@", 1)
            assert f"{name} {version}" in licences or f"{name.split('/')[-1]} {version}" in licences


async def test_openapi_document_carries_the_package_version_and_this_server(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/api/openapi.json")).json()
    assert document["info"]["version"] == agent_sessions.__version__
    assert document["servers"] == [{"url": "http://localhost"}]
    other = (await client.get("http://127.0.0.1:9999/api/openapi.json")).json()
    assert other["servers"] == [{"url": "http://127.0.0.1:9999"}]


def test_startup_lines_say_where_everything_is(tmp_path: Path) -> None:
    agents = {
        "rag": AgentConfig(backend="http", url="http://user:pw@127.0.0.1:9100/run?token=x"),
        "fin": AgentConfig(
            backend="openai", base_url="http://127.0.0.1:9000/v1", model="m", api_key="sk-secret"
        ),
    }
    settings = Settings(data_dir=tmp_path, port=8123, agents=agents)
    lines = startup_lines(settings, None)
    assert lines == [
        f"agent-sessions {agent_sessions.__version__} ready at http://127.0.0.1:8123/",
        "GraphiQL: http://127.0.0.1:8123/graphql",
        "API docs: http://127.0.0.1:8123/docs "
        "(OpenAPI document: http://127.0.0.1:8123/api/openapi.json)",
        f"data directory: {tmp_path} (embedded database)",
        "mode: open (no AGENT_SESSIONS_ADMIN_KEY; each request is the administrator 'local')",
        "agents: fin (openai, http://127.0.0.1:9000/v1), rag (http, http://127.0.0.1:9100/run)",
    ]
    key_mode = Settings(
        data_dir=tmp_path, host="0.0.0.0", admin_key="k", mongodb_uri="mongodb://u:p@db:27017"
    )
    lines = startup_lines(key_mode, None)
    assert lines[0].endswith("ready at http://127.0.0.1:8080/ (listening on all addresses)")
    assert lines[1] == "GraphiQL: http://127.0.0.1:8080/graphql#key=<your key>"
    assert lines[3] == "database: mongodb://db:27017/ (MONGODB_URI)"
    assert lines[4].startswith("mode: key")
    assert lines[5].startswith("agents: none")


async def test_the_app_says_them_when_it_starts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(data_dir=tmp_path, mongodb_uri="mongodb://127.0.0.1:1")
    app = build_app(settings, storage=_unopened())
    with caplog.at_level(logging.INFO, logger="agent_sessions"):
        async with app.router.lifespan_context(app):
            pass
    said = [r.getMessage() for r in caplog.records if r.name == "agent_sessions"]
    assert said == startup_lines(settings, _unopened())


@pytest.mark.slow
def test_the_wheel_carries_every_static_file(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {
        f"agent_sessions/{p.relative_to(STATIC_DIR.parent)}"
        for p in STATIC_DIR.rglob("*")
        if p.is_file()
    }
    assert shipped and shipped <= names, sorted(shipped - names)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), sorted(names)
