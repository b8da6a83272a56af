"""The core of the app, one sub-package per concern, imports only downward (contract §2; tests/test_layout.py):

    errors, clock, caching            what everything may use
    settings, validation              typed settings; checks of untrusted input
    model/                            plain data: integrations, tracked issues, work item changes
    ado/  store/  deliveries/         Azure DevOps over HTTP; Table Storage and queues; parsing what arrives
    connections/                      a stored integration as a ready Azure DevOps client
    lookups/  sync/  intake/          get_issue/search; the sync rules and their application; the webhook
    jobs/  admin/                     the timers' sweeps; the admin routes' validation and effect

No module here imports azure.functions: `functions/` adapts triggers to these.
"""
