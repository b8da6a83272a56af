"""The text a tracker comment has on a work item (contract §12.3), as plain functions.

The Comments API posts as the integration's identity, so the author is named in the text itself:

    [//]: # (tracker-comment:<org>/<issue>/<comment id>)
    **<author>** wrote:

    <the comment's markdown, as given>

The first line is the marker that lets a retry find a copy an attempt cut off after Azure DevOps' answer had
already added: a link reference definition, which CommonMark renders as nothing. It is plain markdown rather
than an HTML comment, which a renderer might strip (then no retry could find it) or show escaped. Only the
first line counts, and only we write it there: a marker quoted inside some comment's text never matches. The
author name is escaped (every ASCII punctuation character backslash-escaped, whitespace collapsed), so a name
can add no markup, link, mention or HTML. The text itself is the person's markdown, sent as it is.

Azure DevOps Server 2022's Comments API takes only HTML (`render_html`): the marker is then an HTML comment on
the first line, the author bold, and the text escaped (no markup of the person's gets through), its blank-line
separated paragraphs as `<p>` and its line breaks as `<br>`.
"""

from __future__ import annotations

import html
import string

from shared.model.comments import Comment

_PUNCTUATION = frozenset(string.punctuation)


def escape_inline(text: str) -> str:
    """`text` as literal markdown on one line: no character of it can start markup."""
    return "".join("\\" + ch if ch in _PUNCTUATION else ch for ch in " ".join(text.split()))


def marker(comment: Comment) -> str:
    # The ids hold only letters, digits and `._:-`, none of which can end the title early.
    return f"[//]: # (tracker-comment:{comment.org_id}/{comment.issue_id}/{comment.comment_id})"


def render(comment: Comment) -> str:
    return f"{marker(comment)}\n**{escape_inline(comment.author)}** wrote:\n\n{comment.text}"


def html_marker(comment: Comment) -> str:
    return f"<!-- tracker-comment:{comment.org_id}/{comment.issue_id}/{comment.comment_id} -->"


def render_html(comment: Comment) -> str:
    author = html.escape(" ".join(comment.author.split()))
    paragraphs = [p.strip("\n") for p in comment.text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    body = "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)
    return f"{html_marker(comment)}\n<p><b>{author}</b> wrote:</p>\n{body}"


def render_for(markdown: bool, comment: Comment) -> str:
    """The text for a server whose comments are markdown (`markdown`), else HTML."""
    return render(comment) if markdown else render_html(comment)


def is_app_comment(text: object) -> bool:
    """Whether a work item comment's text is one the app wrote (its first line is the app's marker, markdown or
    HTML). Only the first line counts, as in `is_copy_of`."""
    if not isinstance(text, str):
        return False
    first = text.split("\n", 1)[0].rstrip("\r")
    return first.startswith("[//]: # (tracker-comment:") or first.startswith("<!-- tracker-comment:")


def is_copy_of(text: object, comment: Comment) -> bool:
    """Whether a work item comment's text is a copy of `comment` (any version of it), markdown or HTML."""
    if not isinstance(text, str):
        return False
    return text.split("\n", 1)[0].rstrip("\r") in (marker(comment), html_marker(comment))
