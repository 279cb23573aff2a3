"""The docs site (`make docs`): it builds offline, and in a real browser every page loads with its images and
formulas drawn, and no internal link or anchor is broken."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from tests.e2e.test_records import chromium

ROOT = Path(__file__).resolve().parents[2]


class _Page(HTMLParser):
    """The ids of a page, and the href/src of its links and images."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.targets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "a" and a.get("href"):
            self.targets.append(str(a["href"]))
        if tag == "img" and a.get("src"):
            self.targets.append(str(a["src"]))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml")]
    done = subprocess.run([*command, "-d", str(out / "site")], cwd=out, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return out / "site"


def _pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if p.name != "404.html")


def test_the_site_holds_every_page_people_read(site: Path) -> None:
    pages = {p.relative_to(site).as_posix() for p in _pages(site)}
    wanted = {"index.html", "docs/math.html", "docs/api.html", "docs/reference.html", "benchmarks/index.html"}
    wanted |= {f"notebooks/{p.stem}.html" for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert wanted <= pages
    reference = (site / "docs/reference.html").read_text()
    assert "Distill this run" in reference  # a docstring of Run.distill, read from the source


def test_no_internal_link_or_anchor_is_broken(site: Path) -> None:
    parsed = {}
    for page in _pages(site):
        parsed[page] = _Page()
        parsed[page].feed(page.read_text())
    broken = []
    for page, content in parsed.items():
        for target in content.targets:
            url = urlsplit(target)
            if url.scheme or target.startswith("//"):
                continue
            path = (page.parent / unquote(url.path)).resolve() if url.path else page
            if path.is_dir():
                path = path / "index.html"
            if not path.exists():
                broken.append(f"{page.relative_to(site)} -> {target}")
            elif url.fragment and path.suffix == ".html":
                ids = parsed[path].ids if path in parsed else set()
                if unquote(url.fragment) not in ids:
                    broken.append(f"{page.relative_to(site)} -> {target} (no such anchor)")
    assert not broken, "\n".join(broken)


def test_every_page_loads_with_its_images_and_formulas_in_a_browser(site: Path, tmp_path: Path) -> None:
    browser = chromium()

    def load(page: Path) -> str:
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
        profile = f"--user-data-dir={tmp_path / page.relative_to(site).as_posix().replace('/', '_')}"
        done = subprocess.run(
            [browser, *flags, profile, "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
        )
        return done.stdout

    pages = _pages(site)
    with ThreadPoolExecutor(2) as pool:
        doms = dict(zip(pages, pool.map(load, pages), strict=True))
    failures, formulas = [], 0
    for page, dom in doms.items():
        images = re.search(r'data-images-loaded="([^"]*)"', dom)
        drawn = re.search(r'data-formulas-drawn="([^"]*)"', dom)
        if not images or not drawn or "failed" in (images.group(1), drawn.group(1)):
            failures.append(
                f"{page.relative_to(site)}: images {images and images.group(1)}, formulas {drawn and drawn.group(1)}"
            )
        else:
            formulas += int(drawn.group(1)) if page.name == "math.html" else 0
        if "$$" in re.sub(r"<(pre|code|script|style)\b.*?</\1>", "", dom, flags=re.DOTALL):
            failures.append(f"{page.relative_to(site)}: a formula left as LaTeX source")
    assert not failures, "\n".join(failures)
    source = (ROOT / "docs/math.md").read_text()
    assert formulas == source.count("$$") // 2 > 0  # each display formula of docs/math.md drawn as MathML
