"""The Azure Functions entry point: builds the FunctionApp and registers the blueprints, nothing else."""

import azure.functions as func

from functions import health

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(health.bp)
