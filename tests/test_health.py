import json

import azure.functions as func
import pytest

from devhost.azurite import connection_string, free_port
from functions.health import health

pytestmark = pytest.mark.usefixtures("azurite")


def _get() -> func.HttpResponse:
    return health(func.HttpRequest("GET", "http://localhost/api/health", body=b""))


def test_health_is_ok_when_table_storage_answers() -> None:
    response = _get()
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert json.loads(response.get_body()) == {"status": "ok", "storage": "ok"}


def test_health_is_503_when_table_storage_is_unreachable(env) -> None:
    closed = free_port()  # nothing listens here
    env.setenv("STORAGE_CONNECTION_STRING", connection_string(closed, closed, closed))
    response = _get()
    assert response.status_code == 503
    body = json.loads(response.get_body())
    assert (body["storage"], body["error"]) == ("unavailable", "Table Storage did not answer.")


def test_health_is_registered_anonymous_get(registered_functions) -> None:
    trigger = registered_functions["health"].get_trigger()
    assert trigger.route == "health"
    assert [m.value for m in trigger.methods] == ["GET"]
    assert trigger.auth_level.value == "anonymous"
