"""The Sentry App (contract §13): what Sentry sends the app and what the app sends back, on top of the tracker
side (`admin`), the sync (`sync`) and the Sentry client (`sentry`, `connections.sentry`).

- `installations`: `installation.created|deleted`, and an internal integration's token entered by an admin.
- `intake`: the webhook route: verified, recorded once per request id, queued, answered in well under 1 s.
- `events`: a recorded webhook applied: Sentry's issue and comment changes become tracker-side changes (§12).
- `to_sentry`: inbound Azure DevOps changes on a Sentry issue sent to Sentry (status, assignee, links).
- `components`: the UI schema and its select fields' options; `issue_links`: the issue-link forms (create, link).
"""
