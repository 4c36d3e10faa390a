"""Keeps request state in module globals and waits at a barrier, to show which invocations ran at
once and in which sandbox.

GET ?token=T&barrier=DIR&parties=N&wait=S: the request's token goes into a module global; the
invocation marks its arrival in DIR/arrived and its run in DIR/running, then waits (at most S
seconds) until N invocations have arrived, counting those running meanwhile; then it answers with
the module's globals as it finds them, its pid, whether the barrier was met, and the most
invocations it saw running at once.
"""

import json
import os
import time

CURRENT_TOKEN = None
INVOCATIONS = 0


def handler(event, context):
    global CURRENT_TOKEN, INVOCATIONS
    query = event.get("queryStringParameters") or {}
    CURRENT_TOKEN = query["token"]
    INVOCATIONS += 1
    parties, wait = int(query["parties"]), float(query["wait"])
    arrived, running = (os.path.join(query["barrier"], name) for name in ("arrived", "running"))
    os.makedirs(arrived, exist_ok=True)
    os.makedirs(running, exist_ok=True)
    for folder in (arrived, running):
        with open(os.path.join(folder, CURRENT_TOKEN), "w"):
            pass
    deadline = time.monotonic() + wait
    peak = 0
    while True:
        peak = max(peak, len(os.listdir(running)))
        met = len(os.listdir(arrived)) >= parties
        if met or time.monotonic() >= deadline:
            break
        time.sleep(0.01)  # the barrier's poll interval
    os.remove(os.path.join(running, CURRENT_TOKEN))
    body = {"token": CURRENT_TOKEN, "invocations": INVOCATIONS, "pid": os.getpid(), "met": met, "peak": peak}
    return {"statusCode": 200, "body": json.dumps(body)}
