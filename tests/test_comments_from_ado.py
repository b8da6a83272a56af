"""Comments from Azure DevOps as plain functions (contract §18): HTML to markdown, what counts as the app's own
comment, the delivery's queue message, and the texts sent on."""

from __future__ import annotations

import pytest

from shared.deliveries import from_message, to_message
from shared.deliveries.envelope import InvalidDelivery
from shared.model.changes import WorkItemUpdate
from shared.model.comments import Comment
from shared.sync.comment_text import is_app_comment, render, render_html
from shared.sync.comments_to_sentry import sentry_text
from shared.sync.from_ado_comments import to_markdown
from shared.sync.html_markdown import html_to_markdown, markdown_mentions

URL = "https://dev.azure.com/fabrikam/_workitems/edit/7"


@pytest.mark.parametrize(
    ("html", "markdown"),
    [
        ("<div>It <b>crashes</b> on <i>save</i></div>", "It **crashes** on *save*"),
        ("<p>one</p><p>two<br>three</p>", "one\n\ntwo  \nthree"),
        ('<a href="https://example.com/x">docs</a>', "[docs](https://example.com/x)"),
        ('<a href="javascript:alert(1)">x</a>', "x"),  # only http(s) links become links
        ("<ul><li>a</li><li>b</li></ul>", "- a\n- b"),
        ("<ol><li>a</li><li>b</li></ol>", "1. a\n2. b"),
        ("<p>1 &lt; 2 *not bold* [x](y)</p>", "1 \\< 2 \\*not bold\\* \\[x\\](y)"),
        ("<pre>x = 1\n  y</pre>", "```\nx = 1\n  y\n```"),
        ("<p>a</p><script>alert(1)</script>", "a"),
    ],
)
def test_html_becomes_markdown_and_nobodys_markup_gets_through(html: str, markdown: str) -> None:
    converted = html_to_markdown(html)
    assert (converted.markdown, converted.dropped) == (markdown, 0)


def test_mentions_and_images_are_dropped_and_counted_with_a_link_to_the_original() -> None:
    html = '<p>Ask <a href="#" data-vss-mention="version:2.0,abc">@Dana</a> <img src="https://dev.azure.com/a.png"></p>'
    converted = html_to_markdown(html)
    assert (converted.markdown, converted.dropped) == ("Ask @Dana [image]", 2)
    text = to_markdown({"text": html, "format": "html"}, URL)
    assert text.endswith(f"[see the original]({URL}))*")
    plain = to_markdown({"text": "<p>fine</p>", "format": "html"}, URL)
    assert plain == "fine"  # nothing dropped: no link added


def test_a_markdown_comment_stays_markdown_but_its_mentions_go() -> None:
    mention = "@<3f2504e0-4f89-11d3-9a0c-0305e82c3301>"
    converted = markdown_mentions(f"**ok** {mention}")
    assert (converted.markdown, converted.dropped) == ("**ok** @someone", 1)
    assert to_markdown({"text": "**ok**", "format": "markdown"}, URL) == "**ok**"


def test_the_apps_own_comments_are_recognised_by_their_first_line_only() -> None:
    comment = Comment("org", "I1", "c1", "Dana", "hello", 0.0)
    assert is_app_comment(render(comment)) and is_app_comment(render_html(comment))
    assert not is_app_comment("quoting:\n[//]: # (tracker-comment:org/I1/c1)")
    assert not is_app_comment("<p>hello</p>") and not is_app_comment(None)


def test_a_commented_delivery_survives_the_queue_message_and_an_update_is_unchanged() -> None:
    commented = WorkItemUpdate("int-1", 7, 3, None, "p", None, None, None, None, commented=True, comment_id=41)
    assert from_message(to_message(commented)) == commented
    plain = WorkItemUpdate("int-1", 7, 3, None, "p", None, None, None, None)
    assert "commented" not in to_message(plain) and from_message(to_message(plain)) == plain
    with pytest.raises(InvalidDelivery):
        from_message(to_message(plain)[:-1] + ',"comment_id":5}')  # a comment id without the flag


def test_the_sentry_note_names_the_author_and_links_the_work_item() -> None:
    comment = Comment("sentry-acme", "123", "vsts-x-7-41", "Dana *Lee*", "It fails", 0.0)
    assert sentry_text(comment, 7, URL) == f"**Dana \\*Lee\\*** wrote on [work item 7]({URL}):\n\nIt fails"
