"""The Azure Functions entry point: builds the FunctionApp and registers the blueprints, nothing else."""

import azure.functions as func

from functions import (
    admin_integrations,
    admin_tracker,
    code_mappings,
    comments,
    forms,
    health,
    lookups,
    maintenance,
    outbound,
    queues,
    sentry_alerts,
    sentry_components,
    sentry_reconcile,
    sentry_updates,
    sentry_webhook,
    setup,
    status,
    webhook,
    workitems,
)

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(health.bp)
app.register_functions(webhook.bp)
app.register_functions(lookups.bp)
app.register_functions(forms.bp)
app.register_functions(admin_integrations.bp)
app.register_functions(admin_tracker.bp)
app.register_functions(code_mappings.bp)
app.register_functions(maintenance.bp)
app.register_functions(queues.bp)
app.register_functions(outbound.bp)
app.register_functions(comments.bp)
app.register_functions(workitems.bp)
app.register_functions(sentry_webhook.bp)
app.register_functions(sentry_components.bp)
app.register_functions(sentry_alerts.bp)
app.register_functions(status.bp)
app.register_functions(sentry_updates.bp)
app.register_functions(sentry_reconcile.bp)
app.register_functions(setup.bp)
