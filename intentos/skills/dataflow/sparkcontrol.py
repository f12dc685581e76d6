"""Changing a running Spark application's executors from outside it.

Spark has no REST call for that: executors are requested and killed from inside the driver
(SparkContext.requestExecutors / killExecutors, the calls dynamic allocation itself makes), and only
while dynamic allocation is off. So a job started by `sparkjobs --control-port` serves a small
endpoint on 127.0.0.1 from its driver:

    GET  /executors              -> {"executors": 2, "ids": ["0", "1"], "target": 2}
    POST /executors {"total": 3} -> {"before": 2, "executors": 3, "target": 3}

and `set_executors` / `get_executors` are its client. A change waits until the cluster has made it
(or `SETTLE_TIMEOUT_S` passes), so the next one starts from a known state.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from intentos.errors import IntentosError

SETTLE_TIMEOUT_S = 60.0
MAX_EXECUTORS = 1024


class ControlError(IntentosError):
    """The control endpoint is unreachable, refused the change, or is not on this machine."""


class ExecutorControl:
    """The executors of the SparkContext `sc`, changed one request at a time."""

    def __init__(self, sc: Any) -> None:
        self._sc = sc
        self._jsc = sc._jsc.sc()  # the Scala SparkContext: the executor calls are not in PySpark's API
        self._lock = threading.Lock()
        self.target = len(self.ids())

    def ids(self) -> list[str]:
        seq = self._jsc.getExecutorIds()
        return [str(seq.apply(i)) for i in range(seq.size())]

    def state(self) -> dict[str, Any]:
        ids = self.ids()
        return {"executors": len(ids), "ids": ids, "target": self.target}

    def scale_to(self, total: int, timeout_s: float = SETTLE_TIMEOUT_S) -> dict[str, Any]:
        """Request or kill executors until `total` run; the newest are killed first (the oldest hold the
        most cached and shuffle data)."""
        if not 1 <= total <= MAX_EXECUTORS:
            raise ValueError(f"total must be 1 to {MAX_EXECUTORS} executors, got {total}")
        with self._lock:
            ids = self.ids()
            if total < len(ids):
                newest = sorted(ids, key=lambda i: (len(i), i))[total:]
                self._jsc.killExecutors(self._sc._jvm.PythonUtils.toSeq(newest))
            # An absolute target: killExecutors lowers the target by what it kills, from whatever it was
            # (without dynamic allocation, 0 at the start), so a relative request would count from there.
            self._jsc.requestTotalExecutors(total, 0, self._sc._jvm.PythonUtils.toScalaMap({}))
            self.target = total
            deadline = time.monotonic() + timeout_s
            while len(self.ids()) != total and time.monotonic() < deadline:
                time.sleep(0.2)
            return {"before": len(ids), "executors": len(self.ids()), "target": total}


def serve(control: ExecutorControl, port: int) -> ThreadingHTTPServer:
    """Serve `control` on 127.0.0.1:`port` in a daemon thread; `shutdown()` the server to stop."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.rstrip("/") != "/executors":
                return self._reply(404, {"error": f"no such endpoint {self.path}; use /executors"})
            self._reply(200, control.state())

        def do_POST(self) -> None:  # noqa: N802
            if self.path.rstrip("/") != "/executors":
                return self._reply(404, {"error": f"no such endpoint {self.path}; use /executors"})
            try:
                length = min(int(self.headers.get("Content-Length") or 0), 4096)
                body = json.loads(self.rfile.read(length) or b"{}")
                total = body.get("total") if isinstance(body, dict) else None
                if not isinstance(total, int) or isinstance(total, bool):
                    raise ValueError('expected {"total": <number of executors>}')
                self._reply(200, control.scale_to(total))
            except ValueError as exc:
                self._reply(400, {"error": str(exc)})
            except Exception as exc:  # noqa: BLE001 - Spark's own refusal (py4j) goes back to the caller as one line
                self._reply(500, {"error": " ".join(str(exc).split())[:300]})

        def _reply(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass  # the driver's stderr is Spark's log

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, name="executor-control", daemon=True).start()
    return server


# -- the client ---------------------------------------------------------------------------------------------


def _check_local(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ControlError(f"{url}: the executor control endpoint must be http on this machine (127.0.0.1)")
    return url.rstrip("/") + "/executors"


def _call(url: str, body: dict[str, Any] | None = None, timeout_s: float = SETTLE_TIMEOUT_S + 10) -> dict[str, Any]:
    endpoint = _check_local(url)
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(endpoint, data=data, headers={"Content-Type": "application/json"},
                                     method="GET" if body is None else "POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as reply:  # noqa: S310 - checked: loopback http
            return dict(json.loads(reply.read()))
    except urllib.error.HTTPError as exc:
        try:
            why = json.loads(exc.read()).get("error", exc.reason)
        except ValueError:
            why = exc.reason
        raise ControlError(f"{url} refused: {why}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ControlError(f"{url}: no executor control endpoint there ({reason}); is the job still running?") from None


def get_executors(url: str) -> int:
    """How many executors the application at `url` has now."""
    return int(_call(url)["executors"])


def set_executors(url: str, total: int) -> dict[str, Any]:
    """Scale the application at `url` to `total` executors; returns {"before", "executors", "target"}."""
    return _call(url, {"total": total})
