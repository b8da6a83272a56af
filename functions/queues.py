"""`POST /api/queues/{queue}/redrive` (function key, contract §5.2): put a poison queue's messages back."""

from __future__ import annotations

import azure.functions as func

from functions.http import error_response, json_response, unavailable_response
from shared.errors import InvalidInput, NotFound, StorageUnavailable
from shared.settings import SettingsError

bp = func.Blueprint()


@bp.function_name("redrive_queue")
@bp.route(route="queues/{queue}/redrive", methods=["POST"])
def redrive_queue(req: func.HttpRequest) -> func.HttpResponse:
    from shared.admin.queues import redrive  # on first use: keeps it out of every cold start

    try:
        result = redrive(req.route_params.get("queue", ""))
    except InvalidInput as exc:
        return error_response(400, str(exc))
    except NotFound as exc:
        return error_response(404, str(exc))
    except (StorageUnavailable, SettingsError) as exc:
        return unavailable_response(exc)
    return json_response({"queue": result.queue, "moved": result.moved, "more": result.more})
