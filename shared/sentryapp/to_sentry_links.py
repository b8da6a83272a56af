"""Links made outside Sentry's UI, shown on the Sentry issue (contract §13.2) as this app's external issue
(`<AreaPath>#<id>`, pointing at the work item's page).

Sentry keeps one external issue per issue and app: a second POST replaces what it shows. So the Sentry issue
shows one linked work item, the one linked last, and the app keeps which one with the external issue's id
(`shared.store.sentry_links`). The message names the link that changed; the worker compares the issue's links
as they are then with what Sentry shows:

- the changed link is linked and not shown: show it (read the work item, POST, keep the id);
- it is gone and was shown: show the issue's last remaining link instead, or, with none left, forget it and
  leave Sentry showing it: deleting an external issue needs `event:admin` (Sentry's
  `SentryAppInstallationExternalIssuePermission`), which would also let the app delete issues, so the app does
  not ask for it and never sends that DELETE (docs/sentry.md §1);
- anything else (shown already, or an unlink of a link not shown): nothing is sent, so a retry, a message
  delivered twice or a request repeated never links twice.

An external issue that Sentry made itself (a link made in Sentry's UI) is not known here, so unlinking that
work item through the admin API leaves it shown in Sentry, until another link replaces it.
"""

from __future__ import annotations

from shared.ado.client import AdoError, AdoNotFound
from shared.connections.ado import call_tracking_reauth, get_client_for_org
from shared.errors import RetryLater
from shared.model.integration import IntegrationNotFound
from shared.model.sentry import SentryInstallation
from shared.model.tracker import Link, TrackedIssue
from shared.sentry.client import SentryClient
from shared.store.integrations import IntegrationStore
from shared.store.sentry_links import SentryLinkStore, ShownLink

LEFT_SHOWN = "left shown"


class Refused(Exception):
    """What retrying cannot fix (Sentry or Azure DevOps refused it): recorded as `sentry_failed`."""


def sync_link(
    client: SentryClient,
    installation: SentryInstallation,
    issue: TrackedIssue,
    changed: str,
    *,
    links: SentryLinkStore | None = None,
) -> str | None:
    """Bring the Sentry issue's external issue in line with the issue's links: "link", "unlink", or None when
    nothing had to be sent, or LEFT_SHOWN when no link is left and Sentry keeps showing the last one."""
    links = links or SentryLinkStore()
    shown = links.get(issue.org_id, issue.issue_id)
    target = _target(changed, shown, issue.links)
    if shown is None and target is None or shown is not None and target is not None and target.key == shown.link_key:
        return None
    if target is None:
        links.delete(issue.org_id, issue.issue_id)  # linking a work item again shows it again (a POST)
        return LEFT_SHOWN
    if not issue.issue_id.isdigit():
        raise Refused("The issue id is not a Sentry issue id, so Sentry cannot show the link.")
    web_url, area_path = _work_item_page(target, issue.org_id)
    external_id = client.link_external_issue(
        installation.uuid,
        issue_id=issue.issue_id,
        web_url=web_url,
        project=area_path,
        identifier=str(target.work_item_id),
    )
    links.put(issue.org_id, issue.issue_id, ShownLink(target.key, external_id))
    return "link"


def _target(changed: str, shown: ShownLink | None, linked: tuple[Link, ...]) -> Link | None:
    """The link Sentry should show: the changed one while it is linked; else what it shows while that is still
    linked; else the issue's last remaining link; None for none."""
    by_key = {link.key: link for link in linked}
    if changed in by_key:
        return by_key[changed]
    if shown is not None and shown.link_key in by_key:
        return by_key[shown.link_key]
    return linked[-1] if linked else None


def _work_item_page(link: Link, org_id: str) -> tuple[str, str]:
    """The work item's web page and area path, read with the credentials the organization may use."""
    store = IntegrationStore()
    try:
        integration, ado = get_client_for_org(link.integration_id, org_id, store=store)
        item = call_tracking_reauth(store, integration, lambda: ado.get_work_item(link.work_item_id))
    except IntegrationNotFound:
        raise Refused("The integration of the linked work item is disabled or gone.") from None
    except AdoNotFound:
        raise Refused(f"Work item {link.work_item_id} does not exist or cannot be read.") from None
    except AdoError as exc:  # throttled, unavailable, refused credentials: may pass
        raise RetryLater(f"reading work item {link.work_item_id}: {exc}", getattr(exc, "retry_after", None)) from exc
    fields = item.get("fields") if isinstance(item, dict) and isinstance(item.get("fields"), dict) else {}
    href = ((item.get("_links") or {}).get("html") or {}).get("href") if isinstance(item, dict) else None
    url = href if isinstance(href, str) and href.startswith(("https://", "http://")) else None
    area = fields.get("System.AreaPath")
    return url or f"{ado.base_url}_workitems/edit/{link.work_item_id}", area if isinstance(area, str) and area else "-"
