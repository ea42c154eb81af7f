"""report.html: report.md rendered to one self-contained page, its PNGs embedded (base64).

One file that opens offline from a mail attachment or a CI artifact: no server, no
external CSS, scripts or images. markdown-it-py (already required by rich) renders it.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from markdown_it import MarkdownIt

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1200px;
       padding: 0 1rem; color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
code { background: #f5f5f5; padding: 0 0.2rem; }
"""
_IMG = re.compile(r'<img src="([^":/\\]+\.png)"')


def render(markdown_text: str, folder: Path, title: str) -> str:
    body = MarkdownIt("commonmark").enable("table").render(markdown_text)

    def embed(match: re.Match[str]) -> str:
        data = base64.b64encode((folder / match.group(1)).read_bytes()).decode()
        return f'<img src="data:image/png;base64,{data}"'

    body = _IMG.sub(embed, body)
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
        f"<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n"
    )


def write(markdown_path: Path, title: str) -> Path:
    path = markdown_path.with_name("report.html")
    path.write_text(render(markdown_path.read_text(), markdown_path.parent, title))
    return path
