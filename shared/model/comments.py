"""Comments of tracked issues (contract §12.3) as plain data: a comment, its copy on each linked work item, and
the change the `vsts-outbound` worker applies. Stored by `shared.store.comments`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from shared.clock import iso_utc

MAX_AUTHOR = 256
VSTS_PREFIX = "vsts-"  # a comment from a work item: `vsts-<integration>-<work item>-<Azure DevOps comment id>`
SENTRY_PREFIX = "sentry-"  # a comment from Sentry: `sentry-<Sentry's comment id>`
SENTRY_COPY = "sentry"  # the key of a comment's copy on the Sentry issue, beside the `<integration>|<id>` ones
# Table Storage holds at most 64 KiB in a string property, i.e. 32,768 UTF-16 code units: the text, counted in
# those units (a character outside the Basic Multilingual Plane counts twice), stays below that.
MAX_TEXT = 32_000


@dataclass(frozen=True)
class RemoteCopy:
    """The comment on one linked work item. Once added: Azure DevOps' comment id, the project it was added in,
    and the version of our comment whose text it has. While an add is under way: no id yet, and the attempt's
    `claim` until `claimed_until`; a claim that ran out means an attempt was cut off after it may have added
    the comment, so the next one looks for it (by its marker) before adding it again."""

    ado_id: int | None = None
    project: str | None = None
    version: int = 0
    deleted: bool = False  # deleted there (by us, or already gone): never added again
    claim: str | None = None
    claimed_until: float = 0.0
    # The comment came from here (contract §18): a person's comment on the work item, never written by the app;
    # `ado_version` is the version of it whose text the tracker comment has, `url` the work item's page.
    origin: bool = False
    ado_version: int = 0
    url: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value not in (None, 0, 0.0, False)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RemoteCopy:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})


@dataclass(frozen=True)
class Comment:
    org_id: str
    issue_id: str
    comment_id: str
    author: str
    text: str  # markdown, as the tracker gave it; emptied when the comment is deleted
    at: float  # when it was added (Unix time)
    version: int = 1  # raised by every edit and by the deletion, so each copy knows whether it is behind
    deleted: bool = False
    remote: Mapping[str, RemoteCopy] = field(default_factory=dict)  # by link key `<integration>|<work item>`
    etag: str | None = field(default=None, compare=False)

    def public(self) -> dict[str, Any]:
        return {"id": self.comment_id, "author": self.author, "text": self.text, "at": iso_utc(self.at)}

    @property
    def source(self) -> str:
        """Where the comment was written: `vsts` (a work item), `sentry`, or `tracker`."""
        if self.comment_id.startswith(VSTS_PREFIX):
            return "vsts"
        return "sentry" if self.comment_id.startswith(SENTRY_PREFIX) else "tracker"

    def origin_copy(self) -> tuple[str, RemoteCopy] | None:
        """(link key, copy) of the work item comment this one came from, for a comment from Azure DevOps."""
        return next(((key, copy) for key, copy in self.remote.items() if copy.origin), None)

    def listed(self) -> dict[str, Any]:
        """As `GET …/comments` lists it (contract §18): with its source, and for one from Azure DevOps the work
        item and its page."""
        item = {**self.public(), "source": self.source}
        origin = self.origin_copy()
        if origin is not None:
            item["work_item_id"] = int(origin[0].rpartition("|")[2])
            if origin[1].url:
                item["url"] = origin[1].url
        return item

    def with_copy(self, link_key: str, copy: RemoteCopy | None) -> Comment:
        remote = {key: value for key, value in self.remote.items() if key != link_key}
        if copy is not None:
            remote[link_key] = copy
        return replace(self, remote=remote)


@dataclass(frozen=True)
class CommentChange:
    """A comment was added, edited or deleted on the tracker side: bring its copies on the issue's linked work
    items in line. It names the comment, not its text: the worker reads it as it is then, so a message applied
    late or twice still sends the newest text. `only`, when not empty: just these links (what is left after
    some failed)."""

    org_id: str
    issue_id: str
    comment_id: str
    only: tuple[str, ...] = ()
