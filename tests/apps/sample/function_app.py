"""A test app for the local host: one function per routing form, a timer and a queue trigger.

Invocations are recorded in CALLS so the tests can see what ran and with what input.
"""

import json

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
CALLS: list[tuple[str, object]] = []


def _echo(req: func.HttpRequest, **extra: object) -> func.HttpResponse:
    body = {"method": req.method, "route": dict(req.route_params), "params": dict(req.params), **extra}
    return func.HttpResponse(json.dumps(body), mimetype="application/json", headers={"X-Sample": "yes"})


@app.route(route="items/{id:int}", methods=["GET"])
def item_by_id(req: func.HttpRequest) -> func.HttpResponse:
    return _echo(req, which="int")


@app.route(route="items/{name}", methods=["GET", "PUT"])
def item_by_name(req: func.HttpRequest) -> func.HttpResponse:
    return _echo(req, which="name", body=req.get_body().decode())


@app.route(route="pages/{a}/{b?}", methods=["GET"])
def optional(req: func.HttpRequest) -> func.HttpResponse:
    return _echo(req)


@app.route(route="files/{*rest}")
def catch_all(req: func.HttpRequest) -> func.HttpResponse:
    return _echo(req)


@app.route(route="text", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def text(req: func.HttpRequest) -> str:
    return "plain"


@app.route(route="boom", methods=["GET"])
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("boom")


@app.timer_trigger(schedule="%TICK_SCHEDULE%", arg_name="timer", run_on_startup=False)
def tick(timer: func.TimerRequest) -> None:
    CALLS.append(("tick", timer.past_due))


@app.queue_trigger(arg_name="msg", queue_name="%WORK_QUEUE%", connection="AzureWebJobsStorage")
def work(msg: func.QueueMessage) -> None:
    payload = json.loads(msg.get_body())
    CALLS.append(("work", (payload, msg.dequeue_count)))
    if payload.get("fail"):
        raise ValueError("asked to fail")
