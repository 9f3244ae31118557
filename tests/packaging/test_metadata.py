"""What each distribution ships besides code: LICENSE, metadata PyPI shows, py.typed, changelog.

The wheels themselves are checked in ``test_fresh_install.py`` (LICENSE, py.typed and the
project URLs are in the built files).
"""

from __future__ import annotations

import re
import tomllib

import pytest

from pleo_export.host import PluginHost
from tests.packaging.distributions import ROOT, Distribution, canonical, distributions

DISTRIBUTIONS = distributions()
REPOSITORY_BLOB = re.compile(r"^https://github\.com/pleo-export/pleo-export/blob/main/(.+?)(#.*)?$")
URL_KEYS = {"Homepage", "Documentation", "Repository", "Issues", "Changelog"}
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_the_repository_license_is_apache_2() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


@pytest.mark.parametrize("dist", DISTRIBUTIONS, ids=lambda d: d.name)
def test_ships_the_license(dist: Distribution) -> None:
    assert dist.project["license"] == "Apache-2.0"
    assert (dist.folder / "LICENSE").read_bytes() == (ROOT / "LICENSE").read_bytes()


@pytest.mark.parametrize("dist", DISTRIBUTIONS, ids=lambda d: d.name)
def test_metadata_is_complete(dist: Distribution) -> None:
    project = dist.project
    assert len(project.get("description", "")) > 20
    assert project.get("authors")
    assert "pleo-export" in project.get("keywords", [])
    classifiers = set(project.get("classifiers", []))
    for needed in (
        "Development Status :: 3 - Alpha",
        "Programming Language :: Python :: 3.11",
        "Topic :: Office/Business :: Financial :: Accounting",
    ):
        assert needed in classifiers, f"{dist.name}: classifier {needed!r} missing"
    urls = project.get("urls", {})
    assert set(urls) >= URL_KEYS, f"{dist.name}: [project.urls] lacks {URL_KEYS - set(urls)}"
    for key, url in urls.items():
        assert url.startswith("https://"), f"{dist.name}: {key} = {url}"
        page = REPOSITORY_BLOB.match(url)
        if page:
            assert (ROOT / page.group(1)).is_file(), f"{dist.name}: {key} points at a missing file"


@pytest.mark.parametrize("dist", DISTRIBUTIONS, ids=lambda d: d.name)
def test_the_readme_is_real_and_works_on_pypi(dist: Distribution) -> None:
    readme = dist.folder / dist.project["readme"]
    text = readme.read_text(encoding="utf-8")
    assert len(text.splitlines()) >= 20, f"{readme} is a stub"
    assert "## Install" in text or "pip install" in text, f"{readme} says nothing of installing"
    # PyPI renders the readme away from the repository: relative links would lead nowhere.
    relative = [
        link
        for link in MARKDOWN_LINK.findall(text)
        if not link.startswith(("https://", "http://", "#", "mailto:"))
    ]
    assert not relative, f"{readme}: relative links {relative}"


@pytest.mark.parametrize("dist", DISTRIBUTIONS, ids=lambda d: d.name)
def test_every_package_is_typed(dist: Distribution) -> None:
    for package in dist.packages:
        assert (package / "py.typed").is_file(), f"{package} has no py.typed"
    assert "Typing :: Typed" in dist.project.get("classifiers", [])


def test_mypy_checks_every_distribution() -> None:
    files = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"][
        "files"
    ]
    for dist in DISTRIBUTIONS:
        assert dist.folder.relative_to(ROOT).joinpath("src").as_posix() in files, dist.name


def test_the_changelog_covers_every_distribution_and_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    for dist in DISTRIBUTIONS:
        assert f"### {dist.name}\n" in text, f"CHANGELOG.md has no section for {dist.name}"
        assert f"## {dist.project['version']} " in text


@pytest.mark.parametrize(
    "dist",
    [d for d in DISTRIBUTIONS if "pleo_export.connectors" in d.project.get("entry-points", {})],
    ids=lambda d: d.name,
)
def test_connectors_link_their_documentation(dist: Distribution) -> None:
    host = PluginHost(load_entry_points=False)
    for name in dist.project["entry-points"]["pleo_export.connectors"]:
        manifest = host.load_connector(name).manifest
        assert manifest.docs_url == dist.project["urls"]["Documentation"], canonical(dist.name)


def test_connectors_list_shows_the_documentation_links() -> None:
    import subprocess
    import sys

    listed = subprocess.run(
        [sys.executable, "-m", "pleo_export.cli", "connectors", "list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    host = PluginHost(load_entry_points=False)
    urls = [info.manifest.docs_url for info in host.installed_connectors() if info.manifest]
    assert urls and all(url for url in urls)
    for url in urls:
        assert f"    docs: {url}\n" in listed
