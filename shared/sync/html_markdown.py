"""An Azure DevOps comment's HTML as markdown (contract §18), as a plain function.

Azure DevOps Server 2022 keeps comments as HTML, and Azure DevOps Services keeps those not written as markdown as
HTML too. What markdown can say comes over: paragraphs, line breaks, bold, italic, code, links, lists, headings,
quotes. What cannot carry over is dropped and counted: a mention (`<a data-vss-mention=…>@Name</a>`) becomes the
plain name, since the person it names is an Azure DevOps identity; an image becomes `[image]`, since its address
needs Azure DevOps credentials. The caller adds a link to the original when anything was dropped. Text is escaped,
so nobody's HTML becomes markup on the other side.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

_ESCAPE = re.compile(r"([\\`*_\[\]<>#|~])")
_BLOCKS = {"p", "div", "ul", "ol", "blockquote", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "table", "tr"}
_MENTION = re.compile(r"@<([0-9A-Fa-f-]{36})>")  # a mention in a markdown comment: `@<identity guid>`


@dataclass(frozen=True)
class Converted:
    markdown: str
    dropped: int  # mentions and images that could not carry over


class _ToMarkdown(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.dropped = 0
        self.links: list[str | None] = []  # per open <a>: its href, None for a mention or an unsafe link
        self.lists: list[list[int]] = []  # per open list: [next number] (ol) or [] (ul)
        self.pre = 0
        self.skip = 0  # inside <script> or <style>: their text is no comment's

    def _block(self) -> None:
        text = "".join(self.out)
        if text and not text.endswith("\n\n"):
            self.out.append("\n" if text.endswith("\n") else "\n\n")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in _BLOCKS:
            self._block()
        if tag in ("script", "style"):
            self.skip += 1
        elif tag == "br":
            self.out.append("  \n")
        elif tag in ("b", "strong"):
            self.out.append("**")
        elif tag in ("i", "em"):
            self.out.append("*")
        elif tag == "code" and not self.pre:
            self.out.append("`")
        elif tag == "pre":
            self.pre += 1
            self.out.append("```\n")
        elif tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self.out.append("#" * int(tag[1]) + " ")
        elif tag == "blockquote":
            self.out.append("> ")
        elif tag == "ul":
            self.lists.append([])
        elif tag == "ol":
            self.lists.append([1])
        elif tag == "li":
            numbering = self.lists[-1] if self.lists else []
            indent = "  " * max(0, len(self.lists) - 1)
            if numbering:
                self.out.append(f"\n{indent}{numbering[0]}. ")
                numbering[0] += 1
            else:
                self.out.append(f"\n{indent}- ")
        elif tag == "img":
            self.dropped += 1
            self.out.append("[image]")
        elif tag == "a":
            href = values.get("href") or ""
            if "data-vss-mention" in values:
                self.dropped += 1
                self.links.append(None)
            elif href.startswith(("https://", "http://")):
                self.links.append(href)
                self.out.append("[")
            else:
                self.links.append(None)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.skip = max(0, self.skip - 1)
        elif tag in ("b", "strong"):
            self.out.append("**")
        elif tag in ("i", "em"):
            self.out.append("*")
        elif tag == "code" and not self.pre:
            self.out.append("`")
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)
            self.out.append("\n```")
        elif tag in ("ul", "ol") and self.lists:
            self.lists.pop()
        elif tag == "a" and self.links:
            href = self.links.pop()
            if href is not None:
                self.out.append(f"]({href.replace(')', '%29').replace(' ', '%20')})")
        if tag in _BLOCKS:
            self._block()

    def handle_data(self, data: str) -> None:
        if self.pre:
            self.out.append(data.replace("```", "'''"))
        elif not self.skip:
            self.out.append(_ESCAPE.sub(r"\\\1", re.sub(r"\s+", " ", data)))


def html_to_markdown(html_text: str) -> Converted:
    parser = _ToMarkdown()
    parser.feed(html_text)
    parser.close()
    text = "".join(parser.out)
    lines, fenced = [], False
    for line in text.split("\n"):
        if line.strip() == "```":
            fenced = not fenced
            lines.append("```")
        elif fenced:
            lines.append(line)  # code keeps its indentation
        else:
            lines.append(line.strip(" ") if not line.endswith("  ") else line.lstrip(" "))
    markdown = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return Converted(markdown, parser.dropped)


def markdown_mentions(markdown: str) -> Converted:
    """A markdown comment as it is, but its mentions (`@<guid>`), which name Azure DevOps identities, as `@someone`."""
    text, count = _MENTION.subn("@someone", markdown)
    return Converted(text.strip(), count)
