"""A stored integration joined to Azure DevOps: `ado` (get_client, domain repair, re-authorization marks),
`credentials` (live Authorization headers, the once-across-instances OAuth refresh), `subscriptions` (recording a
new service hook with its secret)."""
