"""The core of the app, one sub-package per concern, imports only downward (contract §2; tests/test_layout.py):

    errors, clock, caching            what everything may use
    settings, validation              typed settings; checks of untrusted input
    model/                            plain data: integrations, tracked issues, work item changes
    ado/  sentry/  store/             Azure DevOps and Sentry over HTTP; Table Storage and queues
    deliveries/                       parsing and verifying what arrives (service hooks, queue messages, Sentry)
    connections/                      a stored integration as a ready Azure DevOps client
    lookups/  sync/  intake/          get_issue/search, form lists; the sync rules, inbound and outbound, and
                                      their application behind the queues; the webhook
    jobs/  admin/                     the timers' sweeps; the admin routes' validation and effect

No module here imports azure.functions: `functions/` adapts triggers to these.
"""
