"""The online health-score service (BentoML 1.4): `POST /score`, `POST /score_features`,
`/livez`, `/readyz`.

Contract with the caller (`healthscore serve`): one environment variable,
`HEALTHSCORE_SERVICE_CONFIG`, holds the JSON of `serving.schemas.ServiceConfig` (build it with
`serving.schemas.service_config_to_env`). It is read once, when the service starts; an absent or
invalid value stops the start with a message naming it. Nothing happens at import. Then

    bentoml serve serving.service:HealthScore --host 127.0.0.1 --port 3000

(the host defaults to 127.0.0.1), and an application asks

    curl -s -H 'Content-Type: application/json' -d '{"account_ids": ["A0000001"]}' \\
        http://127.0.0.1:3000/score

    {"model_version": "1", "errors": [], "results": [{"account_id": "A0000001",
     "renewal_probability": 0.648, "health_score": 65, "tier": "unhealthy", "tier_colour": "red",
     "domains": {"adoption": -0.93, ...}, "drivers": {"negative": [{"feature":
     "days_since_last_training", "domain": "adoption", "value": "359 days", "impact": -0.4557,
     "text": "days since the last training: 359 days (renewing accounts: 71 days)"}, ...],
     "positive": [...]}, "actions": [...], "model_version": "1",
     "features_as_of": "2026-11-01T00:00:00Z"}]}

with `-H 'X-API-Key: ...'` when a key is configured.

At start a background thread opens the Feast store and loads the model the registry alias points
at; the worker waits for that first attempt before it takes requests (so with several workers,
`workers` in the configuration, no request meets one still loading); `/readyz` answers 503 until
model and store are loaded and the online store answers, `/livez` 200 as long as the process
runs. With Redis down a lookup fails within `store.redis_timeout_seconds` (no retries): `/score`
answers 503 naming the online store, `/readyz` 503. The thread then checks the alias every
`poll_seconds` and, when it moved, loads the new version beside the old one and swaps them with
one reference assignment: a request uses the model it started with, and every response names its
`model_version`. A failed reload keeps the current model.

Every malformed request gets a 4xx JSON error naming the field: body validation by pydantic
(BentoML answers 400 with `{"error", "detail": [{"loc", "msg", "type"}]}`); content type, body
size, method and API key by `RequestGuard` below, in the same shape.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import threading

import bentoml

from serving.schemas import (
    ItemError,
    ScoreFeaturesRequest,
    ScoreRequest,
    ScoreResponse,
    ServiceConfig,
    concurrency_from_env,
    service_config_from_env,
)

logger = logging.getLogger("bentoml.healthscore")  # under bentoml: its handlers show it

API_PATHS = frozenset({"/score", "/score_features"})
OPEN_PATHS = frozenset({"/livez", "/healthz", "/readyz"})  # probes never need the API key
API_KEY_HEADER = "X-API-Key"
RETRY_SECONDS = 5.0  # until the first model is loaded, retry at least this often
PROBE_ACCOUNT = "__readyz_probe__"
STARTUP_WAIT_SECONDS = 300.0  # a worker waits this long for its first model before it serves


def _error(status: int, message: str, loc: list, kind: str):
    from starlette.responses import JSONResponse

    detail = [{"type": kind, "loc": loc, "msg": message}]
    return JSONResponse({"error": message, "detail": detail}, status_code=status)


def _check_count(title: str, field: str, count: int, limit: int) -> None:
    if count > limit:
        message = f"at most {limit} {field.replace('_', ' ')} per request, got {count}"
        raise _validation_error(title, [((field,), message, "too_long")])


def _validation_error(title: str, errors: list[tuple[tuple, str, str]]):
    """A pydantic ValidationError (BentoML turns it into a 400 naming each location)."""
    from pydantic_core import PydanticCustomError, ValidationError

    return ValidationError.from_exception_data(
        title,
        [
            {"type": PydanticCustomError(kind, message), "loc": loc, "input": None}
            for loc, message, kind in errors
        ],
    )


# Worker processes and threads per worker, from the configuration `bentoml serve` starts with
# (the API functions are synchronous: BentoML runs them in a pool of `threads` threads per worker).
WORKERS, THREADS = concurrency_from_env()


@bentoml.service(
    name="healthscore",
    http={"host": "127.0.0.1"},
    traffic={"timeout": 30},
    labels={"project": "healthscore"},
    workers=WORKERS,
    threads=THREADS,
)
class HealthScore:
    """Customer health scores by account id or from posted features."""

    def __init__(self) -> None:
        self.config: ServiceConfig = service_config_from_env()
        _quiet_rejections()
        # no progress bar in the server log at each model load
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        self.scorer = None  # serving.online.Scorer; replaced whole, never mutated
        self.store = None
        self.last_error: str | None = "loading"
        self._stop = threading.Event()
        self._first_attempt = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="model-watcher", daemon=True)
        self._watcher.start()
        # A worker takes no connection before its constructor returns: waiting for the first
        # load means that with several workers a request never lands on one still loading (each
        # has its own model); when no model can be loaded yet, the worker starts not ready.
        self._first_attempt.wait(STARTUP_WAIT_SECONDS)

    # -- model and store ---------------------------------------------------------------------

    def _watch(self) -> None:
        delay = 0.0
        while not self._stop.wait(delay):
            try:
                self.refresh()
                self.last_error = None
            except Exception as exc:  # keep serving the current model; say why in the log
                self.last_error = f"{type(exc).__name__}: {exc}"
                logger.warning("model refresh failed: %s", self.last_error)
            self._first_attempt.set()
            delay = self.config.poll_seconds
            if self.scorer is None:
                delay = min(delay, RETRY_SECONDS)

    def refresh(self) -> bool:
        """Load the version the alias points at, if it is not the one serving; True if swapped."""
        from features.store import open_store
        from serving.online import alias_version, load_scorer

        version = alias_version(self.config)
        current = self.scorer
        if current is not None and current.version == version:
            return False
        if self.store is None:
            self.store = open_store(self.config.store)
        scorer = load_scorer(self.config, self.store, version)
        _warm_up(scorer, self.store)
        self.scorer = scorer  # the swap: one reference assignment
        logger.info(
            "serving %s version %s (was %s)",
            self.config.registered_model,
            version,
            current.version if current else None,
        )
        return True

    @bentoml.on_shutdown
    def stop(self) -> None:
        self._stop.set()

    def __is_ready__(self) -> bool:
        """Model and store loaded, and the online store answers a lookup."""
        from serving.online import lookup

        scorer, store = self.scorer, self.store
        if scorer is None or store is None:
            return False
        try:
            lookup(store, scorer.service, [PROBE_ACCOUNT])
        except Exception as exc:
            logger.warning("readiness probe: online store does not answer: %s", exc)
            return False
        return True

    # -- endpoints -----------------------------------------------------------------------------

    @bentoml.api
    def score(self, request: ScoreRequest, /) -> ScoreResponse:
        """Score accounts by id from the online feature store; unknown ids come back in
        `errors`, beside the results of the others."""
        from serving.online import lookup

        scorer = self.scorer  # one model for the whole request, even if a swap happens now
        if scorer is None:
            return _not_ready()
        _check_count("ScoreRequest", "account_ids", len(request.account_ids), self.config.max_ids)
        ids = list(dict.fromkeys(request.account_ids))  # duplicates scored once, order kept
        try:
            frame = lookup(self.store, scorer.service, ids)
        except Exception as exc:  # Redis down: fails within redis_timeout_seconds, no retries
            logger.warning("online store lookup failed: %s: %s", type(exc).__name__, exc)
            return _error(
                503,
                f"the online feature store ({_store_name(self.config)}) is not available",
                [],
                "unavailable",
            )
        found = frame["found"].to_numpy()
        errors = [
            ItemError(
                account_id=a,
                error="unknown account: no features in the online store "
                "(not a current customer, or features not materialized)",
            )
            for a, ok in zip(ids, found, strict=True)
            if not ok
        ]
        results = scorer.score(frame[found].reset_index(drop=True))
        return ScoreResponse(model_version=scorer.version, results=results, errors=errors)

    @bentoml.api
    def score_features(self, request: ScoreFeaturesRequest, /) -> ScoreResponse:
        """Score accounts from posted features, checked against the model's feature list."""
        from serving.online import feature_errors, posted_frame

        scorer = self.scorer
        if scorer is None:
            return _not_ready()
        _check_count("ScoreFeaturesRequest", "accounts", len(request.accounts), self.config.max_ids)
        errors = feature_errors(request.accounts, scorer.specs)
        if errors:
            raise _validation_error("ScoreFeaturesRequest", errors)
        frame = posted_frame(request.accounts, scorer.model.features)
        return ScoreResponse(model_version=scorer.version, results=scorer.score(frame))


class RequestGuard:
    """ASGI middleware in front of the endpoints: API key (constant-time comparison), method,
    content type and body size, each refused with a 4xx JSON error naming the field before any
    parsing. The probes stay open. It reads the same `HEALTHSCORE_SERVICE_CONFIG` as the service,
    when the app starts (Starlette builds its middleware on the first, lifespan, call)."""

    def __init__(self, app) -> None:
        self.app = app
        try:
            self.config: ServiceConfig | None = service_config_from_env()
        except RuntimeError:  # the service itself reports it and stops the start
            self.config = None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        if self.config is None:
            await _error(503, "the service is not configured", [], "unavailable")(
                scope, receive, send
            )
            return
        headers = {k.decode("latin-1").lower(): v for k, v in scope["headers"]}
        refusal = self._refuse(scope, headers)
        if refusal is None and scope["path"] in API_PATHS:
            body, refusal = await self._read_body(receive, self.config.max_body_bytes)
            if refusal is None:
                receive = _replay(body, receive)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        if scope["path"] == "/" and scope["method"] in ("GET", "HEAD"):
            await self._dashboard()(scope, receive, send)
            return
        if scope["path"] not in API_PATHS:
            send = _json_not_found(scope, receive, send)
        await self.app(scope, receive, send)

    def _dashboard(self):
        """GET /: the dashboard page `healthscore dashboard` wrote (re-read on each request, so a
        new score run shows without a restart); behind the API key like every endpoint."""
        from starlette.responses import FileResponse

        path = self.config.dashboard_path
        if path and os.path.isfile(path):
            return FileResponse(path, media_type="text/html; charset=utf-8")
        return _error(
            404,
            "no dashboard yet: run `healthscore score` and `healthscore dashboard`",
            ["path"],
            "not_found",
        )

    def _refuse(self, scope, headers: dict):
        config = self.config
        if config.api_key is not None:
            given = headers.get(API_KEY_HEADER.lower(), b"")
            wanted = config.api_key.get_secret_value().encode("utf-8")
            if not hmac.compare_digest(given, wanted):
                return _error(
                    401, "missing or invalid API key", ["header", API_KEY_HEADER], "unauthorized"
                )
        if scope["path"] not in API_PATHS:
            return None
        if scope["method"] != "POST":
            response = _error(405, f"use POST for {scope['path']}", ["method"], "method")
            response.headers["Allow"] = "POST"
            return response
        media = headers.get("content-type", b"application/json").decode("latin-1")
        if media.split(";")[0].strip().lower() != "application/json":
            return _error(
                415,
                f"unsupported content type {media!r}: send application/json",
                ["header", "Content-Type"],
                "unsupported_media_type",
            )
        length = headers.get("content-length")
        if length is not None:
            try:
                size = int(length)
            except ValueError:
                return _error(
                    400, "invalid Content-Length", ["header", "Content-Length"], "invalid"
                )
            if size > config.max_body_bytes:
                return _too_large(config.max_body_bytes)
        return None

    @staticmethod
    async def _read_body(receive, limit: int):
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"", _error(400, "the client disconnected", ["body"], "disconnected")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return b"", _too_large(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), None


class _RejectionFilter(logging.Filter):
    """BentoML logs every request that fails validation as an error with a traceback; a bad
    request is the client's mistake, so it becomes one warning line (the client gets the 400)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from pydantic import ValidationError

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ValidationError):
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg, record.args = "Rejected %s [%s]: %s", (*record.args[:2], exc.title)
        return True


def _quiet_rejections() -> None:
    log = logging.getLogger("bentoml._internal.server.http_app")  # where BentoML logs them
    if not any(isinstance(f, _RejectionFilter) for f in log.filters):
        log.addFilter(_RejectionFilter())


def _warm_up(scorer, store) -> None:
    """One throw-away lookup and score before a model serves, so that the first request does not
    pay for the first online-store connection and the first prediction (about a second)."""
    from serving.online import lookup, posted_frame
    from serving.schemas import AccountFeatures

    scorer.score(posted_frame([AccountFeatures(account_id=PROBE_ACCOUNT)], scorer.model.features))
    with contextlib.suppress(Exception):  # an unreachable store is the readiness probe's job
        lookup(store, scorer.service, [PROBE_ACCOUNT])


def _store_name(config: ServiceConfig) -> str:
    """The online store as an error may name it: its type, and Redis's host:port (never the
    connection options, which may hold a password)."""
    store = config.store
    if store.online_store == "redis":
        return f"redis at {store.redis_connection.split(',')[0].strip()}"
    return store.online_store


def _not_ready():
    return _error(503, "the model is not loaded yet: see /readyz", [], "unavailable")


def _too_large(limit: int):
    return _error(413, f"request body larger than {limit} bytes", ["body"], "too_large")


def _json_not_found(scope, receive, send):
    """A `send` that turns the router's plain-text 404 into the JSON error shape."""
    replaced = False

    async def wrapped(message) -> None:
        nonlocal replaced
        if message["type"] == "http.response.start" and message["status"] == 404:
            replaced = True
            path = scope["path"]
            await _error(404, f"no endpoint {path!r}", ["path"], "not_found")(scope, receive, send)
        elif not replaced:
            await send(message)

    return wrapped


def _replay(body: bytes, receive):
    """A `receive` that hands the already-read body to the app once, then defers to the client."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


HealthScore.add_asgi_middleware(RequestGuard)
