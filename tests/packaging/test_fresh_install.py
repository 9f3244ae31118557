"""Each distribution, and each of its extras, installed on its own into a fresh virtualenv.

The workspace installs every distribution and the dev tools together, so a module imported
but not declared (``sniffio`` once was one) works in the workspace and breaks for a user who
runs ``pip install './core[sandbox]'``. Here every install set gets a new virtualenv with
nothing but what its ``pyproject.toml`` files declare, built from wheels of the repository folders
(workspace distributions a set needs come from those wheels too, never from an index), and
then:

- every module of the installed distributions is imported (the conformance kit only with its
  ``[testing]`` extra);
- ``pleo-export --help`` and ``pleo-export connectors list`` run, and every installed
  connector is listed without a load error;
- what an extra is for runs for real: ``sandbox serve`` answers on a loopback port,
  ``run --watch`` with ``[webhooks] listen`` receives on its port, a ``postgresql://`` state
  URL reaches the driver.

Installs use ``uv pip`` when uv is available, else ``venv`` and pip; packages come from the
configured package index. Slow (a few seconds per set), so the sets are built once per
session and in parallel with nothing else.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path

import anyio
import httpx
import pytest

from tests.packaging.distributions import ROOT, Distribution, canonical, distributions

pytestmark = pytest.mark.slow

CORE = "pleo-export"
EXTRA_ONLY_MODULES = {"pleo_export.testing": "testing"}
"""Module prefix -> the extra it needs; imported only when that extra is installed."""

COMPANIONS: dict[str, list[str]] = {
    # `run --watch` needs a connector before it opens the webhook receiver; the SFTP
    # connector with a local folder needs no service.
    "pleo-export[webhooks]": ["pleo-export-sftp"],
}


@dataclass(frozen=True)
class InstallSet:
    """What one fresh virtualenv gets: distributions (name -> extras)."""

    label: str
    wanted: dict[str, frozenset[str]] = field(hash=False)


def _by_name() -> dict[str, Distribution]:
    return {canonical(d.name): d for d in distributions()}


def install_sets() -> list[InstallSet]:
    sets: list[InstallSet] = []
    for dist in distributions():
        for extra in [None, *sorted(dist.extras)]:
            label = dist.name if extra is None else f"{dist.name}[{extra}]"
            wanted = {canonical(dist.name): frozenset([extra] if extra else [])}
            for companion in COMPANIONS.get(label, []):
                wanted[canonical(companion)] = frozenset()
            sets.append(InstallSet(label, wanted))
    return sets


def _closure(wanted: dict[str, frozenset[str]]) -> dict[str, frozenset[str]]:
    """Add every workspace distribution the wanted ones require (with extras' requirements)."""
    known = _by_name()
    result = dict(wanted)
    todo = list(wanted)
    while todo:
        dist = known[todo.pop()]
        needed = set(dist.base_requirements)
        for extra in result[canonical(dist.name)]:
            needed |= dist.extras[extra]
        for name in needed & set(known):
            if name not in result:
                result[name] = frozenset()
                todo.append(name)
    return result


def _uv() -> list[str] | None:
    for candidate in (os.environ.get("UV"), shutil.which("uv")):
        if candidate and Path(candidate).is_file():
            return [candidate]
    if find_spec("uv") is not None:
        return [sys.executable, "-m", "uv"]
    return None


def _clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without anything that would leak the workspace in."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PLEO_EXPORT_")
        and key not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "UV_PROJECT_ENVIRONMENT"}
    }
    env.update(extra)
    return env


@dataclass
class FreshEnv:
    root: Path
    installed: dict[str, frozenset[str]]

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def cli(self) -> Path:
        return self.root / "bin" / "pleo-export"

    def run(
        self, *args: str | Path, cwd: Path, timeout: float = 120, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(a) for a in args],
            cwd=cwd,
            env=_clean_env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _must(command: list[str], cwd: Path | None = None) -> None:
    done = subprocess.run(
        command,
        cwd=cwd,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        message = f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(f"cannot build a fresh virtualenv here: {message[-2000:]}")


class FreshEnvs:
    """Wheels of every workspace distribution, built once; one virtualenv per install set."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.uv = _uv()
        self.wheels: dict[str, Path] = {}
        self.built: dict[str, FreshEnv] = {}

    def wheel(self, dist: Distribution) -> Path:
        name = canonical(dist.name)
        if name not in self.wheels:
            out = self.base / "wheels" / name
            if self.uv is not None:
                _must(
                    [
                        *self.uv,
                        "build",
                        "--quiet",
                        "--wheel",
                        "--out-dir",
                        str(out),
                        str(dist.folder),
                    ]
                )
            else:
                _must(
                    [
                        sys.executable,
                        "-m",
                        "pip",
                        "wheel",
                        "--quiet",
                        "--no-deps",
                        "-w",
                        str(out),
                        str(dist.folder),
                    ]
                )
            (self.wheels[name],) = out.glob("*.whl")
        return self.wheels[name]

    def get(self, install: InstallSet) -> FreshEnv:
        if install.label not in self.built:
            # "+" keeps "pleo-export[sandbox]" apart from the distribution pleo-export-sandbox.
            root = self.base / canonical(install.label.replace("[", "+").rstrip("]"))
            known = _by_name()
            everything = _closure(install.wanted)
            specs = []
            for name, extras in sorted(everything.items()):
                wheel = str(self.wheel(known[name]))
                specs.append(f"{wheel}[{','.join(sorted(extras))}]" if extras else wheel)
            python = str(root / "bin" / "python")
            if self.uv is not None:
                _must([*self.uv, "venv", "--quiet", "--python", sys.executable, str(root)])
                _must([*self.uv, "pip", "install", "--quiet", "--python", python, *specs])
            else:
                _must([sys.executable, "-m", "venv", str(root)])
                _must([python, "-m", "pip", "install", "--quiet", *specs])
            self.built[install.label] = FreshEnv(root, everything)
        return self.built[install.label]


@pytest.fixture(scope="session")
def fresh_envs(tmp_path_factory: pytest.TempPathFactory) -> FreshEnvs:
    return FreshEnvs(tmp_path_factory.mktemp("fresh-venvs"))


def _modules_to_import(env: FreshEnv) -> list[str]:
    known = _by_name()
    modules: list[str] = []
    for name, extras in env.installed.items():
        dist = known[name]
        for path in dist.modules():
            module = dist.module_name(path)
            if module.endswith("__main__"):
                continue  # runs the command line on import
            needs = [
                extra
                for prefix, extra in EXTRA_ONLY_MODULES.items()
                if module == prefix or module.startswith(prefix + ".")
            ]
            if all(extra in extras for extra in needs):
                modules.append(module)
    return sorted(modules)


IMPORT_ALL = textwrap.dedent(
    """
    import importlib, json, sys
    failed = {}
    for name in sys.argv[1:]:
        try:
            importlib.import_module(name)
        except BaseException as error:
            failed[name] = f"{type(error).__name__}: {error}"
    print(json.dumps(failed))
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _background(*args: str | Path, cwd: Path, **extra: str) -> Iterator[Background]:
    """Run a long-lived command; yields it with the file its output goes to; stops it after."""
    log = cwd / "background.log"
    with log.open("w", encoding="utf-8") as out:
        process = subprocess.Popen(
            [str(a) for a in args],
            cwd=cwd,
            env=_clean_env(**extra),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            yield Background(process, log)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass
class Background:
    process: subprocess.Popen[str]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8")


def _wait_for_http(url: str, job: Background, *, method: str = "GET", seconds: float = 60) -> int:
    """The status of the first answer from ``url``; fails with the command's output if none."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if job.process.poll() is not None:
            pytest.fail(f"exited {job.process.returncode} before {url} answered:\n{job.output()}")
        try:
            return httpx.request(method, url, timeout=2).status_code
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail(f"nothing answered on {url} within {seconds}s; output:\n{job.output()}")


INSTALL_SETS = install_sets()


def test_install_sets_cover_every_distribution_and_extra() -> None:
    labels = {s.label for s in INSTALL_SETS}
    for dist in distributions():
        assert dist.name in labels
        assert {f"{dist.name}[{extra}]" for extra in dist.extras} <= labels


@pytest.mark.parametrize("install", INSTALL_SETS, ids=lambda s: s.label)
def test_fresh_install_imports_and_runs(
    install: InstallSet, fresh_envs: FreshEnvs, tmp_path: Path
) -> None:
    env = fresh_envs.get(install)
    modules = _modules_to_import(env)
    assert modules
    imported = env.run(env.python, "-c", IMPORT_ALL, *modules, cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout) == {}, f"{install.label}: modules that do not import"

    if not env.cli.exists():
        return  # a distribution without the core has no command (every set has it today)
    helped = env.run(env.cli, "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert "Usage: pleo-export" in helped.stdout

    listed = env.run(env.cli, "connectors", "list", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = {row["distribution"]: row for row in json.loads(listed.stdout)}
    connectors = {
        name
        for name in env.installed
        if '"pleo_export.connectors"' in (_by_name()[name].folder / "pyproject.toml").read_text()
    }
    assert {canonical(d) for d in rows} == connectors
    assert all(row["error"] is None for row in rows.values()), rows


def _set(label: str) -> InstallSet:
    return next(s for s in INSTALL_SETS if s.label == label)


def test_sandbox_serve_answers_on_loopback(fresh_envs: FreshEnvs, tmp_path: Path) -> None:
    env = fresh_envs.get(_set("pleo-export[sandbox]"))
    port = _free_port()
    with _background(env.cli, "sandbox", "serve", "--port", str(port), cwd=tmp_path) as job:
        status = _wait_for_http(f"http://127.0.0.1:{port}/v3/export-jobs", job)
    assert status == 401  # the sandbox itself, asking for the printed API key
    assert "api_key" in job.output()


@pytest.mark.anyio
async def test_run_watch_receives_webhooks(fresh_envs: FreshEnvs, tmp_path: Path) -> None:
    from pleo_export_sandbox import Sandbox
    from pleo_export_sandbox.server import running_server

    env = fresh_envs.get(_set("pleo-export[webhooks]"))
    (tmp_path / "outbox").mkdir()
    (tmp_path / "pleo-export.toml").write_text(
        '[connector]\nname = "sftp"\n[connector.settings]\nlocal_dir = "outbox"\n',
        encoding="utf-8",
    )
    sandbox = Sandbox()
    company = sandbox.add_company()
    port = _free_port()
    async with running_server(sandbox) as base_url:
        with _background(
            env.cli,
            "run",
            "--watch",
            cwd=tmp_path,
            PLEO_EXPORT_PLEO__BASE_URL=base_url,
            PLEO_EXPORT_PLEO__API_KEY=company.api_key,
            PLEO_EXPORT_PLEO__COMPANY_ID=company.id,
            PLEO_EXPORT_WEBHOOKS__LISTEN=f"127.0.0.1:{port}",
            PLEO_EXPORT_WEBHOOKS__SECRET="whsec_" + "A" * 32,
        ) as job:
            url = f"http://127.0.0.1:{port}/pleo/webhooks"
            status = await anyio.to_thread.run_sync(lambda: _wait_for_http(url, job, method="POST"))
    assert status == 401, job.output()  # the receiver, refusing an unsigned delivery


def test_postgresql_state_url_reaches_the_driver(fresh_envs: FreshEnvs, tmp_path: Path) -> None:
    env = fresh_envs.get(_set("pleo-export[postgresql]"))
    closed = _free_port()
    done = env.run(
        env.cli,
        "jobs",
        cwd=tmp_path,
        PLEO_EXPORT_PLEO__BASE_URL="production",
        PLEO_EXPORT_STATE__URL=f"postgresql://nobody@127.0.0.1:{closed}/none",
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "state store" in done.stderr
    assert "No module named" not in done.stderr and "install" not in done.stderr


@pytest.mark.parametrize("dist", distributions(), ids=lambda d: d.name)
def test_wheel_carries_license_typing_and_project_urls(
    dist: Distribution, fresh_envs: FreshEnvs
) -> None:
    with zipfile.ZipFile(fresh_envs.wheel(dist)) as wheel:
        names = wheel.namelist()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        text = wheel.read(metadata).decode("utf-8")
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names
    for package in dist.import_names:
        assert f"{package}/py.typed" in names
    assert "License-Expression: Apache-2.0" in text
    assert "Classifier: Typing :: Typed" in text
    for key in ("Homepage", "Documentation", "Repository", "Issues", "Changelog"):
        assert f"Project-URL: {key}, https://" in text
    assert "Description-Content-Type: text/markdown" in text


README_INSTALL = re.compile(r"^pip install ((?:'?\./[^\s]+'?\s*)+)", re.MULTILINE)


def test_the_readme_install_then_init_and_check_work(tmp_path: Path) -> None:
    """The README's install line, as written, in a fresh venv; then `init` and `check`."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Using it for real") :]
    match = README_INSTALL.search(section)
    assert match, "README's 'Using it for real' shows no `pip install ./...` line"
    specs = [s.strip("'") for s in match.group(1).split()]
    assert any("beancount" in s for s in specs) and any("sandbox" in s for s in specs)
    root = tmp_path / "venv"
    python = str(root / "bin" / "python")
    uv = _uv()
    if uv is not None:
        _must([*uv, "venv", "--quiet", "--python", sys.executable, str(root)])
        _must([*uv, "pip", "install", "--quiet", "--python", python, *specs], cwd=ROOT)
    else:
        _must([sys.executable, "-m", "venv", str(root)])
        _must([python, "-m", "pip", "install", "--quiet", *specs], cwd=ROOT)
    env = FreshEnv(root, {})
    work = tmp_path / "work"
    work.mkdir()
    done = env.run(env.cli, "init", "beancount", cwd=work)
    assert done.returncode == 0, done.stdout + done.stderr
    checked = env.run(env.cli, "check", cwd=work)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.splitlines()[0] == "connector beancount: ok"
    # No job and no master-data difference would fail; the items note may say some items
    # would (the starter ledger has no expense accounts yet), which leaves the verdict ok.
    lines = checked.stdout.splitlines()
    assert not [line for line in lines if "would fail" in line and "  items: " not in line]
    assert any(line.startswith("  items: ") for line in lines), checked.stdout


def test_demo_writes_the_html_report_next_to_the_ledger(
    fresh_envs: FreshEnvs, tmp_path: Path
) -> None:
    """Issue 15's line: the core, the beancount connector and the report plugin in a fresh
    virtualenv, then one `pleo-export demo` writes an HTML report per job into the demo folder."""
    wanted = {
        canonical("pleo-export"): frozenset({"sandbox"}),
        canonical("pleo-export-beancount"): frozenset(),
        canonical("pleo-export-report"): frozenset(),
    }
    env = fresh_envs.get(InstallSet("demo+report", wanted))
    done = env.run(env.cli, "demo", "--dir", "demo", cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    demo = tmp_path / "demo"
    assert (demo / "ledger" / "main.beancount").is_file()
    pages = sorted(demo.glob("job-*.html"))
    assert len(pages) == 3, sorted(p.name for p in demo.iterdir())  # the demo's three jobs
    assert len(sorted(demo.glob("job-*.csv"))) == 3
    assert "Reports: 3 HTML pages" in done.stdout
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert text.startswith("<!DOCTYPE html>") and "<script" not in text
        assert "Pleo export report: job " in text and 'class="badge posted"' in text
        assert "Balanced: the " in text  # beancount read back what it booked
