"""The HTTP side of the emulator: W&B's status codes, bodies, JSON and SSE framing."""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Callable
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from langchain_wandb_router.testing._bodies import (
    Answer,
    sampling_error,
    sampling_of,
)
from langchain_wandb_router.testing._cache import cache_salt_error
from langchain_wandb_router.testing._latency import (
    LatencyDraw,
    LatencyState,
    wait_unless_gone,
)
from langchain_wandb_router.testing._load import LoadState, concurrency_error_body
from langchain_wandb_router.testing._types import RecordedRequest

if TYPE_CHECKING:
    from langchain_wandb_router.catalog._models import ModelInfo
    from langchain_wandb_router.testing._responder import Reply
    from langchain_wandb_router.testing._types import Fault

_MISSING_BEARER = {
    "error": {
        "code": "invalid_api_key",
        "message": "Missing bearer authentication in header",
        "type": "invalid_request_error",
    }
}
_STATUS_MESSAGES = {
    400: "Invalid request",
    401: "Authentication failed",
    402: "You exceeded your current quota, please check your plan and billing details.",
    403: "The inference gateway is not enabled for your organization",
    404: "The requested resource was not found",
    429: "concurrency limit reached for requests: per project",
    500: "The server had an error while processing your request",
    502: "Bad gateway",
    503: "The engine is currently overloaded, please try again later",
}


class Emulated(Protocol):
    """The emulator as the handler sees it (``WandbEmulator`` is one).

    Its settings, its load and latency state, and the steps of a request:
    record it, take a scripted fault, build the reply and put it on the wire.
    """

    api_key: str
    projects: set[str] | None
    live_models: list[str] | None
    default_project: str
    rate_limit_retry_after: float | None
    models_by_id: dict[str, ModelInfo]
    load: LoadState
    latency: LatencyState
    sleep_for: Callable[[float], None]

    @property
    def reasoning_field(self) -> str: ...

    def record_request(self, request: RecordedRequest) -> int: ...

    def take_fault(self, model: str | None) -> Fault | None: ...

    def reply_for(self, info: ModelInfo, body: dict[str, Any], n: int) -> Reply: ...

    def cached_tokens_for(
        self, info: ModelInfo, body: dict[str, Any], request: int
    ) -> int: ...


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """W&B's JSON error body for ``status``."""
    if status == 429:
        code, kind = "rate_limit_exceeded", "rate_limit_error"
    else:
        code = None
        kind = "invalid_request_error" if status < 500 else "server_error"
    return {
        "error": {
            "code": code,
            "message": message or _STATUS_MESSAGES.get(status, "Error"),
            "type": kind,
        }
    }


def _seconds_header(seconds: float) -> str:
    """``Retry-After`` text: whole seconds as an integer, else a decimal."""
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    emulator: Emulated

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up (cancelled calls, dropped pools) are normal here."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, the second
    # waits for the peer's delayed ACK on every response.
    disable_nagle_algorithm = True
    server: _Server

    # Per request (a kept-alive connection reuses the handler): whether a POST
    # is still counted in flight, the status line sent, the (project, model)
    # slot held, and the model key its answer is counted under.
    _counted: bool = False
    _status: int | None = None
    _slot: tuple[str, str] | None = None
    _model_key: str | None = None

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet; tests read :attr:`WandbEmulator.requests` instead."""

    def send_response(self, code: int, message: str | None = None) -> None:
        """Send the status line, remembering the status for the counters."""
        self._status = code
        super().send_response(code, message)

    # ---------------------------------------------------------------- writing

    def _send(
        self,
        status: int,
        payload: dict[str, Any] | list[Any] | str | bytes,
        headers: dict[str, str] | None = None,
    ) -> None:
        if isinstance(payload, bytes):
            data, ctype = payload, "application/json"
        elif isinstance(payload, str):
            data = payload.encode()
            ctype = "text/html" if payload.lstrip().startswith("<") else "text/plain"
        else:
            data, ctype = (
                json.dumps(payload, ensure_ascii=False).encode(),
                "application/json",
            )
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self._release()
        self.wfile.write(data)

    def _release(self) -> None:
        """Stop counting this POST in flight; called before its last bytes go out.

        A client may send its next request as soon as it has read a reply. Were
        the slot freed after that, a client keeping exactly to the cap would
        get a 429 now and then, and stats read after a reply could miss it.
        """
        if self._counted:
            self._counted = False
            emu = self.server.emulator
            emu.load.leave(self._slot, self._model_key, self._status)

    def _drop(self) -> None:
        self.close_connection = True
        self._release()
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    # --------------------------------------------------------------- handling

    def _route(self) -> str:
        """The path the request is routed on: no query string, no final ``/``."""
        return urlsplit(self.path).path.rstrip("/")

    def _record(self, emu: Emulated, body: dict[str, Any] | None) -> int:
        """Record the request as received (query string included); its number."""
        model = body.get("model") if body is not None else None
        headers = {k.lower(): v for k, v in self.headers.items()}
        return emu.record_request(
            RecordedRequest(
                self.command, self.path, headers, body, model, self.client_address[1]
            )
        )

    def _authorized(self) -> bool:
        emu = self.server.emulator
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            self._send(401, _MISSING_BEARER)
            return False
        if auth[len("Bearer ") :] != emu.api_key:
            self._send(401, error_body(401))
            return False
        project = self.headers.get("OpenAI-Project")
        if (
            project is not None
            and emu.projects is not None
            and project not in emu.projects
        ):
            self._send(
                401,
                error_body(
                    401, f"Authentication failed: project '{project}' not found"
                ),
            )
            return False
        return True

    def do_GET(self) -> None:
        """``GET /v1/models``."""
        emu = self.server.emulator
        self._record(emu, None)
        if self._route() != "/v1/models":
            self._send(404, error_body(404))
            return
        if not self._authorized():
            return
        ids = (
            emu.live_models if emu.live_models is not None else sorted(emu.models_by_id)
        )
        data = [
            {"id": i, "object": "model", "created": 0, "owned_by": "system", "root": i}
            for i in ids
        ]
        self._send(200, {"object": "list", "data": data})

    def do_POST(self) -> None:
        """``POST /v1/chat/completions``."""
        emu = self.server.emulator
        self._status = self._slot = self._model_key = None
        emu.load.enter()
        self._counted = True
        try:
            self._post(emu)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            self._release()

    def _post(self, emu: Emulated) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = None
        model = body.get("model") if body is not None else None
        if not isinstance(model, str):
            model = None
        n = self._record(emu, body)
        if self._route() != "/v1/chat/completions":
            self._send(404, error_body(404))
            return
        self._model_key = model or ""
        if not self._authorized():
            return
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("messages"), list)
            or not body["messages"]
        ):
            detail = [
                {
                    "loc": ["body", "messages"],
                    "msg": "field required",
                    "type": "value_error.missing",
                }
            ]
            self._send(422, {"detail": detail})
            return
        invalid = sampling_error(body) or cache_salt_error(body)
        if invalid is not None:
            self._send(400, error_body(400, invalid))
            return
        if not self._admit(emu, self._model_key):
            return
        outage = emu.load.outage_for(self._model_key)
        if outage is not None:
            payload = (
                outage.body if outage.body is not None else error_body(outage.status)
            )
            self._send(outage.status, payload, dict(outage.headers))
            return
        fault = emu.take_fault(model)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.status is not None:
            payload = fault.body if fault.body is not None else error_body(fault.status)
            self._send(fault.status, payload, fault.headers)
            return
        info = emu.models_by_id.get(model or "")
        if info is None or info.is_retired(date.today()):
            self._send(404, error_body(404))
            return
        reply = emu.reply_for(info, body, n)
        service_time = emu.load.service_time(self._model_key)
        if service_time > 0:
            emu.sleep_for(service_time)
        answer = Answer(
            info.id,
            reply,
            n,
            sampling_of(body),
            emu.reasoning_field,
            emu.cached_tokens_for(info, body, n),
        )
        draw = emu.latency.draw(info.id, n)
        if body.get("stream"):
            self._stream(answer, fault, draw)
        else:
            self._json(answer, fault, draw)

    def _admit(self, emu: Emulated, model: str) -> bool:
        """Take a slot under the cap, or answer W&B's concurrency 429."""
        project = self.headers.get("OpenAI-Project") or emu.default_project
        if emu.load.admit(project, model):
            self._slot = (project, model)
            return True
        retry_after = emu.rate_limit_retry_after
        headers = (
            None
            if retry_after is None
            else {"Retry-After": _seconds_header(retry_after)}
        )
        self._send(429, concurrency_error_body(model), headers)
        return False

    def _wait(self, seconds: float) -> bool:
        """Wait out a drawn delay; ``False`` if the client hung up meanwhile.

        A cancelled call closes its connection: the request then ends at once
        (its slot freed) rather than after the rest of its delays.
        """
        if wait_unless_gone(self.connection, seconds):
            return True
        self.close_connection = True
        return False

    def _json(
        self, answer: Answer, fault: Fault | None, draw: LatencyDraw | None
    ) -> None:
        tokens = answer.reply.completion_tokens
        if draw is not None and not self._wait(draw.answer_time(tokens)):
            return
        data = json.dumps(answer.completion_body(), ensure_ascii=False).encode()
        if fault is not None and (fault.truncate or fault.drop_after is not None):
            half = data[: len(data) // 2]
            if fault.truncate:
                self._send(200, half)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(half)
            self._drop()
            return
        self._send(200, data)

    def _stream(
        self, answer: Answer, fault: Fault | None, draw: LatencyDraw | None
    ) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for key, value in (fault.headers if fault else {}).items():
            self.send_header(key, value)
        self.end_headers()
        for sent, event in enumerate(answer.stream_events()):
            # The first chunk waits for the first token, each later one for its
            # token; the usage chunk follows the finish chunk at once.
            if draw is not None and not self._wait(
                draw.ttft if sent == 0 else draw.per_token if event["choices"] else 0
            ):
                return
            if fault is not None and fault.chunk_delay:
                time.sleep(fault.chunk_delay)
            if (
                fault is not None
                and fault.drop_after is not None
                and sent >= fault.drop_after
            ):
                self._drop()
                return
            if (
                fault is not None
                and fault.malformed_after is not None
                and sent == fault.malformed_after
            ):
                self._write_chunk(b"data: {not json\n\n")
            self._write_chunk(
                b"data: " + json.dumps(event, ensure_ascii=False).encode() + b"\n\n"
            )
        self._release()
        self._write_chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def make_server(address: tuple[str, int], emulator: Emulated) -> _Server:
    """A threading HTTP server bound to ``address`` that serves ``emulator``."""
    server = _Server(address, _Handler)
    server.emulator = emulator
    return server
