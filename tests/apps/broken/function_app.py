"""A test app the real worker refuses: the timer binds `timer` but the parameter is `mytimer`."""

import azure.functions as func

app = func.FunctionApp()


@app.timer_trigger(schedule="0 */5 * * * *", arg_name="timer")
def tick(mytimer: func.TimerRequest) -> None:
    pass
