"""The wheel installs one import package, ``agent_sessions``, and nothing else: not the tests,
not the benchmark, no top-level ``schema`` or ``agents`` to shadow the libraries of those
names. Built from a clean copy of the tree and installed into a fresh venv beside
``schema`` and ``openai-agents``."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IGNORED = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis"
)


def build_wheel(tmp_path: Path) -> Path:
    # A copy, so a stale build/ directory in the checkout cannot leak old files in.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=IGNORED)
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    [wheel] = dist.glob("agent_sessions-*.whl")
    return wheel


@pytest.mark.slow  # about a minute: a venv and three installs
def test_the_wheel_installs_one_package_beside_schema_and_openai_agents(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        [top_level] = [n for n in names if n.endswith(".dist-info/top_level.txt")]
        assert z.read(top_level).decode().split() == ["agent_sessions"]
    roots = {n.split("/")[0] for n in names}
    assert roots == {"agent_sessions", wheel.name.split("-py")[0] + ".dist-info"}
    assert not any(n.startswith(("tests/", "bench/")) for n in names)
    assert "agent_sessions/client/frames.py" in names
    assert "agent_sessions/storage/transfer.py" in names

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(wheel), "schema", "openai-agents"],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    check = textwrap.dedent(
        """
        import importlib.metadata as md, sys, sysconfig
        from pathlib import Path

        import agents, schema
        import agent_sessions
        from agent_sessions import AsyncClient, Client

        site = Path(sysconfig.get_paths()["purelib"])

        def owner(module):
            # The distribution that installed a module's file.
            path = Path(module.__file__).resolve()
            return {d.metadata["Name"] for d in md.distributions()
                    if any(Path(d.locate_file(f)).resolve() == path for f in d.files or ())}

        assert owner(schema) == {"schema"}, owner(schema)
        assert owner(agents) == {"openai-agents"}, owner(agents)
        assert hasattr(schema, "Schema") and hasattr(agents, "Agent")
        assert Path(agent_sessions.__file__).parent == site / "agent_sessions"
        ours = {f.parts[0] for f in md.files("agent-sessions") if not str(f).startswith("..")}
        assert ours == {"agent_sessions", "agent_sessions-0.1.0.dist-info"}, ours
        assert not (site / "tests").exists() and not (site / "bench").exists()
        assert "pandas" not in sys.modules
        print("ok", agents.__name__, schema.__name__, Client.__name__, AsyncClient.__name__)
        """
    )
    # Not from the checkout's directory, where `import agent_sessions` would find the source.
    result = subprocess.run(
        [str(python), "-c", check], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ok", "agents", "schema", "Client", "AsyncClient"]
    cli = subprocess.run(
        [str(env_dir / "bin" / "agent-sessions"), "export", "--help"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert cli.returncode == 0 and "--since" in cli.stdout
