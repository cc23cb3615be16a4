"""GraphiQL and the API docs in a real headless Chromium with every host but loopback
blocked: the pages render from the files the package ships, and the example runs.

The browser is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``),
so the test needs nothing but Chromium itself. Without one it is skipped, saying so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import urlopen

import pytest

from .helpers import LiveServer, live_settings

pytestmark = pytest.mark.slow

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER = next((path for name in BROWSERS if (path := shutil.which(name))), None)
if BROWSER is None:
    pytest.skip(
        "no Chromium on this machine (apt-get install chromium): the browser tests need one",
        allow_module_level=True,
    )

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
FLAGS = [
    "--headless",
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    # Every name resolves to nothing but loopback: a request elsewhere fails, and is counted.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--remote-debugging-pipe",
]


class Navigated(Exception):
    """The page went away while a script ran in it (a reload or a navigation)."""


class Browser:
    """Headless Chromium on a DevTools pipe: commands, and every request a page sends."""

    def __init__(self, user_data_dir: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def as_fds_3_and_4() -> None:  # where --remote-debugging-pipe expects them
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        # Python's own descriptors are not inherited, so keeping the rest open is safe; the
        # default would close 3 and 4 again after preexec_fn.
        self.process = subprocess.Popen(
            [BROWSER, *FLAGS, f"--user-data-dir={user_data_dir}", "about:blank"],
            preexec_fn=as_fds_3_and_4,
            close_fds=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.requests: list[str] = []
        self._next_id = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self._arrived = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        for domain in ("Network", "Page", "Runtime"):
            self.call(f"{domain}.enable", session=self.session)

    def _read(self) -> None:
        buffer = b""
        with os.fdopen(self._from_browser, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                buffer += chunk
                *messages, buffer = buffer.split(b"\0")
                for raw in messages:
                    message = json.loads(raw)
                    if message.get("method") == "Network.requestWillBeSent":
                        self.requests.append(message["params"]["request"]["url"])
                    with self._arrived:
                        if "id" in message:
                            self._replies[message["id"]] = message
                        self._arrived.notify_all()

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        with self._arrived:
            assert self._arrived.wait_for(lambda: self._next_id in self._replies, timeout=30), (
                f"no answer to {method}"
            )
            reply = self._replies.pop(self._next_id)
        gone = ("navigated or closed", "Cannot find context", "context was destroyed")
        if "error" in reply and any(g in reply["error"].get("message", "") for g in gone):
            raise Navigated(method)
        assert "error" not in reply, reply
        return reply["result"]

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", session=self.session, expression=expression, returnByValue=True
        )
        details = result.get("exceptionDetails", {})
        if "context was destroyed" in str(details):
            raise Navigated(expression)
        assert not details, result
        return result["result"].get("value")

    def open(self, url: str) -> float:
        """Navigate; the time from the navigation to the load event, in seconds."""
        start = time.monotonic()
        self.call("Page.navigate", session=self.session, url=url)
        self.wait_for("document.readyState === 'complete'")
        return time.monotonic() - start

    def wait_for(self, expression: str, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if value := self.evaluate(expression):
                    return value
            except Navigated:
                pass  # the next page is on its way: ask it
            assert time.monotonic() < deadline, f"still false after {timeout} s: {expression}"
            time.sleep(0.05)

    def elsewhere(self) -> list[str]:
        """Requests the pages sent to any host but loopback (inline data: URLs are none)."""
        return [
            url
            for url in self.requests
            if urlsplit(url).scheme not in ("data", "blob", "about")
            and urlsplit(url).hostname not in LOOPBACK
        ]

    def close(self) -> None:
        os.close(self._to_browser)  # Chromium exits when its pipe closes
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    b = Browser(tmp_path / "profile")
    try:
        yield b
    finally:
        b.close()


def seed(server: LiveServer, headers: dict[str, str] | None = None) -> None:
    server.graphql(
        "mutation($i: RecordRunInput!) { recordRun(input: $i) { id } }",
        {
            "i": {
                "sessionId": "browser-session",
                "agentId": "finance_agent",
                "messages": [
                    {"role": "USER", "content": "What is our Q1 revenue?"},
                    {"role": "ASSISTANT", "content": "Your Q1 revenue was $4.2 million."},
                ],
                "retrievedContext": [
                    {"id": "c1", "text": "Q1 revenue: $4.2M", "score": 0.84,
                     "sourceName": "Q1-2026.pdf"},
                ],
            }
        },
        headers=headers,
    )  # fmt: skip


# CodeMirror 5 keeps each editor on its wrapper element.
QUERY_EDITOR = "document.querySelector('.graphiql-query-editor .CodeMirror')"
RESPONSE = "document.querySelector('.result-window .CodeMirror')"
# The variables and headers editors, in that order.
TOOL_EDITORS = (
    "[...document.querySelectorAll('.graphiql-editor-tool .CodeMirror')]"
    ".map(e => e.CodeMirror.getValue())"
)


def run_example(browser: Browser) -> dict[str, Any]:
    """Press GraphiQL's run button; the response pane's JSON once it has data. A press
    while GraphiQL is still setting up its editors does nothing, so it presses again."""
    pane = f"({RESPONSE} ? {RESPONSE}.CodeMirror.getValue() : '')"
    for _ in range(3):
        browser.evaluate("document.querySelector('.graphiql-execute-button').click()")
        try:
            text = browser.wait_for(f"{pane}.includes('\"data\"') && {pane}", timeout=10)
        except AssertionError:
            continue
        return json.loads(text)
    raise AssertionError(
        f"no data after three presses; the response pane: {browser.evaluate(pane)!r}"
    )


def report(name: str, value: object, record: Callable[[str, object], None]) -> None:
    record(name, value)
    print(f"{name}: {value}")


def test_graphiql_renders_offline_and_its_example_shows_data(
    browser: Browser,
    mongo_uri: str,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    with LiveServer(live_settings(mongo_uri, tmp_path)) as server:
        seed(server)
        start = time.monotonic()
        browser.call("Page.navigate", session=browser.session, url=f"{server.url}/graphql")
        browser.wait_for(f"!!{QUERY_EDITOR}")
        report("graphiql_first_render_s", round(time.monotonic() - start, 3), record_property)
        query = browser.evaluate(f"{QUERY_EDITOR}.CodeMirror.getValue()")
        assert "retrievedContext" in query and "sessions(" in query
        body = run_example(browser)
        assert "errors" not in body, body
        [session] = body["data"]["sessions"]["nodes"]
        assert session["id"] == "browser-session"
        answer = session["messages"]["nodes"][1]
        assert answer["retrievedContext"] == [
            {"sourceName": "Q1-2026.pdf", "score": 0.84, "text": "Q1 revenue: $4.2M"}
        ]
        # The explorer plugin loaded too: its button is in the sidebar.
        assert browser.evaluate(
            "!!document.querySelector('[aria-label=\"Show GraphiQL Explorer\"]')"
        )
    report("graphiql_requests_elsewhere", len(browser.elsewhere()), record_property)
    assert browser.elsewhere() == []
    assert any(url.endswith("/static/vendor/graphiql/graphiql.min.js") for url in browser.requests)


def test_graphiql_in_key_mode_takes_the_key_from_the_fragment_and_keeps_it(
    browser: Browser, mongo_uri: str, tmp_path: Path
) -> None:
    admin = "browser-admin-key"
    settings = live_settings(mongo_uri, tmp_path, admin_key=admin)
    with LiveServer(settings) as server:
        seed(server, headers={"Authorization": f"Bearer {admin}"})
        browser.open(f"{server.url}/graphql#key={admin}")
        variables, headers = browser.wait_for(f"!!{QUERY_EDITOR} && {TOOL_EDITORS}")
        assert browser.evaluate("location.hash") == ""  # the key left the address bar
        assert json.loads(headers) == {"Authorization": f"Bearer {admin}"}
        assert variables == ""
        assert run_example(browser)["data"]["viewer"] == {"userId": "admin", "isAdmin": True}
        # Typed (or given) once: the next visit, without the fragment, still has it.
        browser.open(f"{server.url}/graphql")
        browser.wait_for(f"!!{QUERY_EDITOR}")
        assert "Forget key" in browser.evaluate("document.getElementById('key-bar').innerText")
        body = run_example(browser)
        assert body["data"]["sessions"]["totalCount"] == 1
    assert browser.elsewhere() == []


def test_graphiql_in_key_mode_asks_for_a_key(
    browser: Browser, mongo_uri: str, tmp_path: Path
) -> None:
    settings = live_settings(mongo_uri, tmp_path, admin_key="browser-admin-key")
    with LiveServer(settings) as server:
        browser.open(f"{server.url}/graphql")
        browser.wait_for(f"!!{QUERY_EDITOR}")
        bar = browser.evaluate("document.getElementById('key-bar').innerText")
        assert "needs an API key" in bar
        browser.evaluate(
            "document.querySelector('#key-bar input').value = 'browser-admin-key';"
            "document.querySelector('#key-bar form').requestSubmit()"
        )
        # The page stays: the headers editor gets the key, the query editor keeps the example.
        _, headers = browser.wait_for(
            f"document.getElementById('key-bar').innerText.includes('Forget key') && "
            f"{TOOL_EDITORS}.length === 2 && {TOOL_EDITORS}[1] !== '' && {TOOL_EDITORS}"
        )
        assert json.loads(headers) == {"Authorization": "Bearer browser-admin-key"}
        assert "RecentSessions" in browser.evaluate(f"{QUERY_EDITOR}.CodeMirror.getValue()")
        assert run_example(browser)["data"]["viewer"]["userId"] == "admin"
        # Forgotten, it leaves the headers and the browser's storage.
        browser.evaluate("document.querySelector('#key-bar button').click()")
        browser.wait_for(f"{TOOL_EDITORS}[1] === ''")
        assert browser.evaluate("localStorage.getItem('agent-sessions:api-key')") is None
        assert "needs an API key" in browser.evaluate(
            "document.getElementById('key-bar').innerText"
        )
    assert browser.elsewhere() == []


def test_api_docs_render_offline(
    browser: Browser,
    mongo_uri: str,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    with LiveServer(live_settings(mongo_uri, tmp_path)) as server:
        start = time.monotonic()
        browser.call("Page.navigate", session=browser.session, url=f"{server.url}/docs")
        count = browser.wait_for("document.querySelectorAll('.opblock').length")
        report("api_docs_first_render_s", round(time.monotonic() - start, 3), record_property)
        with urlopen(f"{server.url}/api/openapi.json") as answer:
            document = json.load(answer)
        operations = sum(len(methods) for methods in document["paths"].values())
        assert count == operations  # every operation of the document
        paths = browser.evaluate(
            "[...document.querySelectorAll('.opblock-summary-path')].map(e => e.innerText)"
        )
        assert "/api/sessions/{session_id}/messages" in [p.replace("\u200b", "") for p in paths]
        # The home page links to both.
        browser.open(f"{server.url}/")
        links = browser.evaluate("[...document.querySelectorAll('a')].map(a => a.href)")
        assert f"{server.url}/graphql" in links and f"{server.url}/docs" in links
    report("api_docs_requests_elsewhere", len(browser.elsewhere()), record_property)
    assert browser.elsewhere() == []


def test_api_docs_in_key_mode_use_the_same_key(
    browser: Browser, mongo_uri: str, tmp_path: Path
) -> None:
    settings = live_settings(mongo_uri, tmp_path, admin_key="docs-admin-key")
    with LiveServer(settings) as server:
        browser.open(f"{server.url}/docs#key=docs-admin-key")
        browser.wait_for("document.querySelectorAll('.opblock').length")
        authorized = browser.wait_for(
            "window.ui.authSelectors.authorized().size && window.ui.authSelectors.authorized().toJS()"
        )
        assert authorized["bearer"]["value"] == "docs-admin-key"
        assert "Forget key" in browser.evaluate("document.getElementById('key-bar').innerText")
    assert browser.elsewhere() == []
