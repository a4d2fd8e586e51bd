"""INSTRUCTIONS.md as a self-contained HTML page, for the administrator whose desk opens .md files as raw text.

The page is the same Markdown rendered (CommonMark with tables), with its style inline and nothing else: no
script, no font, no image, so it opens offline from a USB stick or a mail attachment and prints as it shows.
Raw HTML in the Markdown is not passed through: every name in it is text.
"""

from __future__ import annotations

from functools import lru_cache
from html import escape
from typing import Any

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 60em; margin: 2em auto;
       padding: 0 1.5em; color: #1d232a; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { font-size: 1.3em; margin-top: 1.6em; } h3 { font-size: 1.1em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #d6dbe0; padding: 0.35em 0.6em; text-align: left; vertical-align: top; }
th { background: #eef1f4; }
code { font-family: ui-monospace, "Cascadia Mono", Consolas, monospace; font-size: 0.92em; background: #f3f5f7;
       padding: 0.05em 0.25em; border-radius: 0.2em; overflow-wrap: anywhere; }
pre { background: #f3f5f7; padding: 0.8em 1em; border-radius: 0.3em; overflow-x: auto; }
pre code { background: none; padding: 0; }
@media print { body { max-width: none; margin: 0; } pre { white-space: pre-wrap; } }
"""


@lru_cache(maxsize=1)
def _renderer() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table")


def markdown_to_html(markdown: str) -> bytes:
    """A whole page for ``markdown``; its title is the first heading."""
    title = next((line.lstrip("# ").strip() for line in markdown.splitlines() if line.startswith("# ")),
                 "privca trust bundle")
    body = _renderer().render(markdown)
    page = (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n")
    return page.encode()


def with_html(files: dict[str, bytes]) -> dict[str, bytes]:
    """``files`` plus an ``.html`` twin of every Markdown file in it."""
    twins = {path[:-3] + ".html": markdown_to_html(data.decode()) for path, data in files.items()
             if path.endswith(".md")}
    return {**files, **twins}
