"""MkDocs hooks of the docs site (`make docs`): the repository's own pages, formulas as MathML, links that hold.

The site is built from the files people read on the repository page, where they are: README.md, docs/, the
notebooks and the benchmark index keep their paths, so every relative link between them works in both places.
Formulas are written in LaTeX between `$` or `$$` (as GitHub renders them) and become MathML at build time,
which the browser draws itself: the site needs no script from elsewhere and works offline. A link to a file
in the repository that is not a page (a test, a script) becomes plain code text, since the site has nothing to show
there; a link to a file that does not exist stays, for MkDocs to report.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from latex2mathml.converter import convert
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

#: What the site shows, as paths in the repository (glob patterns).
PAGES = (
    "README.md",
    "docs/*.md",
    "docs/*.png",
    "docs/js/*.js",
    "notebooks/*.ipynb",
    "notebooks/pretrained/README.md",
    "benchmarks/README.md",
    "benchmarks/RESULTS-*.md",
)

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
DISPLAY = re.compile(r"^([ \t]*)\$\$\s*\n(.+?)\n[ \t]*\$\$[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"(?<![\\$\w])\$(?=\S)([^$\n]+?)(?<=\S)\$(?![\w$])")
LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)")

#: The API reference, from the docstrings (mkdocstrings reads the source; nothing is imported).
REFERENCE = """# API reference

The public names of `import difflab`, from their docstrings; [the API guide](api.md) shows them at work.

::: difflab.api
    options:
      members: [train, load, Run]

::: difflab.comparison
    options:
      members: [compare, Comparison]

::: difflab.evaluation
    options:
      members: [Evaluation, Stat]

::: difflab.callbacks

::: difflab.data.catalog

::: difflab.errors
"""


def _root(config: Any) -> Path:
    return Path(config.config_file_path).parent


@event_priority(100)  # before mkdocs-jupyter looks for notebooks among the files
def on_files(files: Files, config: Any) -> Files:
    """Replace the docs folder's files by the repository's pages at their repository paths."""
    docs = Path(config.docs_dir).resolve()
    kept = [f for f in files if not (f.abs_src_path and Path(f.abs_src_path).resolve().is_relative_to(docs))]
    root = _root(config)
    pages = sorted({p for pattern in PAGES for p in root.glob(pattern)})
    site = (config.site_dir, config.use_directory_urls)
    added = [File(p.relative_to(root).as_posix(), str(root), *site) for p in pages]
    added.append(File.generated(config, "docs/reference.md", content=REFERENCE))
    return Files(kept + added)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Formulas to MathML, links to files outside the site to code text; code blocks and spans stay as written."""
    known = {f.src_uri for f in files}
    here = posixpath.dirname(page.file.src_uri)

    def prose(text: str) -> str:
        text = DISPLAY.sub(lambda m: f"\n{m.group(1)}{convert(m.group(2).strip(), display='block')}\n", text)
        text = INLINE.sub(lambda m: convert(m.group(1)), text)
        return LINK.sub(lambda m: _link(m, here, known, _root(config)), text)

    return _outside(FENCE, markdown, lambda text: _outside(CODE_SPAN, text, prose))


def on_post_page(output: str, page: Any, config: Any) -> str:
    """A notebook's links to Markdown pages point at their HTML (MkDocs does that for Markdown pages only)."""
    if not page.file.src_uri.endswith(".ipynb"):
        return output

    def html(m: re.Match[str]) -> str:
        path, fragment = m.group(2), m.group(3) or ""
        stem = path[: -len("README.md")] + "index" if path.endswith("README.md") else path[: -len(".md")]
        return f"{m.group(1)}{stem}.html{fragment}"

    return re.sub(r'(href=")(?![a-z][a-z0-9+.-]*:)([^"#]+\.md)(#[^"]*)?', html, output)


def _outside(pattern: re.Pattern[str], text: str, change: Any) -> str:
    """`change` applied to the stretches of `text` that `pattern` does not match."""
    out, last = [], 0
    for m in pattern.finditer(text):
        out += [change(text[last : m.start()]), m.group(0)]
        last = m.end()
    return "".join([*out, change(text[last:])])


def _link(m: re.Match[str], here: str, known: set[str], root: Path) -> str:
    text, target = m.group(1), m.group(2)
    if re.match(r"^[a-z][a-z0-9+.-]*:|^#", target):
        return m.group(0)
    path = posixpath.normpath(posixpath.join(here, target.split("#", 1)[0]))
    if path in known or path.rstrip("/") + "/README.md" in known or not (root / path).exists():
        return m.group(0)  # a page, or a file that is nowhere: MkDocs checks the link (and --strict fails)
    return text if text.startswith("`") else f"`{text}`"
