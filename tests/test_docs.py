"""The docs a newcomer reads: a short front page that links every docs page, links that resolve."""
from __future__ import annotations

import re


def links(page):
    return [target for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text())
            if not target.startswith(("http://", "https://", "mailto:"))]


def test_front_page_is_short_and_links_every_docs_page(root):
    readme = root / "README.md"
    assert len(readme.read_bytes()) <= 10240
    linked = {(root / target).resolve() for target in links(readme)}
    missing = [p.name for p in (root / "docs").glob("*.md") if p.resolve() not in linked]
    assert not missing, f"docs pages not linked from README.md: {missing}"


def test_relative_links_resolve(root):
    pages = [root / "README.md", *(root / "docs").glob("*.md"), root / "bench" / "results" / "README.md"]
    broken = [f"{page.relative_to(root)} -> {target}" for page in pages for target in links(page)
              if not (page.parent / target).exists()]
    assert not broken, broken
