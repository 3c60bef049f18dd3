"""Celery tasks of the metrics app. A task takes ids, fetches, and calls the metrics module.

Debounce: every incident event sends `agent_changed` on commit, which calls
`schedule_agent_refresh`. It writes a fresh token
in the scope's RefreshRequest row and enqueues `refresh_agent_metrics(agent_id, token)` with a
short countdown. When the task runs, a newer token means a newer task is on its way, so this one
skips: a burst of events becomes one recompute. Under a burst longer than MAX_WAIT the task
computes anyway, so figures never lag by more than about MAX_WAIT. Two workers never compute
the same scope at once (a conditional UPDATE claims it); a task that finds its scope busy tries
again shortly. An agent refresh then asks for a refresh of the overall
scope in the same way (with a longer countdown).

Without Redis (eager mode) the task simply runs in-process when the transaction commits. When
the broker is down, enqueueing logs and returns: the web request is not broken, and the request row
stays pending in the database (`pending_since`), where beat's `catch_up_refreshes` finds it within
a minute of the broker's return (and `recompute_all_metrics` within ten).

Faults: a claim lasts CLAIM_TTL and the computing worker renews it every CLAIM_TTL / 3 from a small
thread, so a worker killed mid-refresh holds its scope for at most CLAIM_TTL (not the task's time
limit). A task that finds its scope busy re-queues itself with a growing delay (BUSY_RETRY doubling
up to BUSY_RETRY_MAX) and gives up after BUSY_ATTEMPTS: its request stays pending for the catch-up.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from kombu.exceptions import KombuError
from kombu.exceptions import OperationalError as BrokerOperationalError

from trustdesk.metrics import refresh
from trustdesk.metrics.models import OVERALL, RefreshRequest

logger = logging.getLogger(__name__)

AGENT_COUNTDOWN = 0.3  # seconds: long enough to gather a burst, short enough to feel live
OVERALL_COUNTDOWN = 2.0
MAX_WAIT = timedelta(seconds=2)
BUSY_RETRY = 0.2  # seconds before the first retry of a task that found its scope busy
BUSY_RETRY_MAX = 10.0
BUSY_ATTEMPTS = 8  # then the pending request waits for catch_up_refreshes
CATCH_UP_AFTER = timedelta(seconds=10)  # a request pending this long has lost its task


def claim_ttl() -> timedelta:
    """How long a claim holds without renewal: a dead worker's scope is free after this."""
    return timedelta(seconds=getattr(settings, "METRICS_CLAIM_TTL_SECONDS", 30))


def busy_retry_delay(attempt: int) -> float:
    return min(BUSY_RETRY * 2**attempt, BUSY_RETRY_MAX)


try:  # redis-py is there whenever the broker is Redis
    from redis.exceptions import RedisError
except ImportError:  # pragma: no cover
    RedisError = BrokerOperationalError  # type: ignore[misc,assignment]
BROKER_ERRORS = (BrokerOperationalError, KombuError, RedisError, ConnectionError, OSError)

TASK_OPTIONS = {
    "acks_late": True,
    "ignore_result": True,
    "autoretry_for": (DatabaseError,),
    "retry_backoff": True,
    "max_retries": 3,
}


def agent_scope(agent_id: int) -> str:
    return f"agent:{agent_id}"


def _request_refresh(scope: str) -> str:
    """Record a new refresh request for `scope`; returns its token."""
    token = uuid.uuid4().hex
    now = timezone.now()
    values = {"token": token, "requested_at": now}
    updated = RefreshRequest.objects.filter(scope=scope).update(
        **values, pending_since=Coalesce(F("pending_since"), Value(now))
    )
    if not updated:
        try:
            with transaction.atomic():
                RefreshRequest.objects.create(scope=scope, pending_since=now, **values)
        except IntegrityError:  # created concurrently: take the latest token anyway
            RefreshRequest.objects.filter(scope=scope).update(**values)
    return token


def _enqueue(task, args: list, countdown: float, queue: str | None = None) -> bool:
    """Send a task; False (logged) when the broker cannot take it. Never raises for that."""
    from trustdesk.celery import app

    options = {"queue": queue} if queue else {}
    try:
        task.apply_async(args=args, countdown=countdown, **options)
    except BROKER_ERRORS as exc:
        logger.warning(
            "metrics: could not enqueue %s%s (%s); the periodic recompute will catch up",
            task.name,
            tuple(args),
            exc,
        )
        return False
    except Exception:
        if not app.conf.task_always_eager:
            raise
        # In-process (eager) mode the computation runs inside the web request that committed the
        # event: a failure there must not turn that request into an error page.
        logger.exception("metrics: in-process refresh of %s failed", tuple(args))
        return False
    return True


def request_full_recompute() -> str:
    """ "computed" (in-process), "queued" (a worker will), or "unreachable" (broker down)."""
    from trustdesk.celery import app

    eager = bool(app.conf.task_always_eager)
    if not _enqueue(recompute_all_metrics, [], 0):
        return "unreachable"
    return "computed" if eager else "queued"


def schedule_agent_refresh(agent_id: int, queue: str | None = None) -> None:
    """Record a refresh request for the agent and enqueue its (debounced) recompute."""
    try:
        token = _request_refresh(agent_scope(agent_id))
    except DatabaseError:
        logger.exception("metrics: could not record a refresh request for agent %s", agent_id)
        return
    _enqueue(refresh_agent_metrics, [agent_id, token], AGENT_COUNTDOWN, queue)


@shared_task(name="trustdesk.metrics.tasks.agent_changed", bind=True, ignore_result=True)
def agent_changed(self, agent_id: int) -> None:
    """An agent's record changed (sent by name from the other apps, after their commit): ask
    for a debounced refresh of its metrics, on the queue this message came from."""
    schedule_agent_refresh(agent_id, _queue_of(self.request))


def schedule_overall_refresh(queue: str | None = None) -> None:
    token = _request_refresh(OVERALL)
    _enqueue(refresh_overall_metrics, [token], OVERALL_COUNTDOWN, queue)


def _queue_of(request) -> str | None:
    """The queue a running task came from, so that its follow-up goes to the same workers."""
    info = getattr(request, "delivery_info", None) or {}
    return info.get("routing_key") or None


def _superseded(scope: str, token: str | None) -> bool:
    if token is None:
        return False
    row = RefreshRequest.objects.filter(scope=scope).first()
    if row is None or row.token == token:
        return False
    # A newer request is queued; skip unless the scope has waited too long already.
    return not (row.pending_since and timezone.now() - row.pending_since > MAX_WAIT)


def _claim(scope: str, now) -> bool:
    """Take the scope for this worker, unless another one is computing it (conditional UPDATE).

    A claim not renewed for claim_ttl() is a worker that died mid-task: it is taken over.
    """
    free = Q(running_since__isnull=True) | Q(running_since__lt=now - claim_ttl())
    if RefreshRequest.objects.filter(free, scope=scope).update(running_since=now):
        return True
    # No row yet (a task sent without a request, e.g. by hand): create it claimed.
    if not RefreshRequest.objects.filter(scope=scope).exists():
        try:
            with transaction.atomic():
                RefreshRequest.objects.create(
                    scope=scope, token="", requested_at=now, running_since=now
                )
            return True
        except IntegrityError:
            return False
    return False


def _release(scope: str, started) -> None:
    """Free the scope and mark what was requested before `started` as served; requests that
    came in meanwhile keep waiting (their tasks are queued or retrying)."""
    RefreshRequest.objects.filter(scope=scope, requested_at__lte=started).update(
        pending_since=None, running_since=None
    )
    RefreshRequest.objects.filter(scope=scope, requested_at__gt=started).update(
        pending_since=started, running_since=None
    )


class _ClaimKeeper:
    """Renews this worker's claim on `scope` every claim_ttl() / 3 while it computes, from a
    daemon thread with its own database connection; stops (and closes it) on exit. In-process
    (eager) there is no other worker to keep out, so nothing runs."""

    def __init__(self, scope: str, since):
        self.scope, self.since = scope, since
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> _ClaimKeeper:
        from trustdesk.celery import app

        if not app.conf.task_always_eager:
            self._thread = threading.Thread(target=self._run, daemon=True, name="claim-keeper")
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        interval = claim_ttl().total_seconds() / 3
        try:
            while not self._stop.wait(interval):
                now = timezone.now()
                # Only our own claim: if it was taken over meanwhile, leave it alone.
                if not RefreshRequest.objects.filter(
                    scope=self.scope, running_since=self.since
                ).update(running_since=now):
                    return
                self.since = now
        except DatabaseError:
            logger.warning("metrics: could not renew the claim on %s", self.scope)
        finally:
            connection.close()


def _retry_when_free(task, args: list, attempt: int) -> None:
    """Another worker computes this scope: try again after a growing delay (it may have started
    before the event this task is about). After BUSY_ATTEMPTS the request stays pending and
    catch_up_refreshes serves it. In-process (eager) there is no other worker to wait for."""
    from trustdesk.celery import app

    if app.conf.task_always_eager:
        return
    if attempt >= BUSY_ATTEMPTS:
        logger.info("metrics: %s%s still busy; left to the catch-up", task.name, tuple(args))
        return
    _enqueue(task, [*args, attempt + 1], busy_retry_delay(attempt))


@shared_task(name="trustdesk.metrics.tasks.refresh_agent_metrics", bind=True, **TASK_OPTIONS)
def refresh_agent_metrics(self, agent_id: int, token: str | None = None, attempt: int = 0) -> str:
    scope = agent_scope(agent_id)
    if _superseded(scope, token):
        return "superseded"
    started = timezone.now()
    if not _claim(scope, started):
        _retry_when_free(refresh_agent_metrics, [agent_id, token], attempt)
        return "busy"
    try:
        with _ClaimKeeper(scope, started):
            found = refresh.refresh_agent(agent_id, now=started)
    except BaseException:
        RefreshRequest.objects.filter(scope=scope).update(running_since=None)
        raise
    if not found:
        RefreshRequest.objects.filter(scope=scope).update(pending_since=None, running_since=None)
        return "no such agent"
    _release(scope, started)
    schedule_overall_refresh(_queue_of(self.request))
    return "computed"


@shared_task(name="trustdesk.metrics.tasks.refresh_overall_metrics", **TASK_OPTIONS)
def refresh_overall_metrics(token: str | None = None, attempt: int = 0) -> str:
    """The overall scope's recent windows (7d to 90d and the weekly trend): what an event can
    change within seconds. The all-time figure follows with beat's full recompute."""
    if _superseded(OVERALL, token):
        return "superseded"
    started = timezone.now()
    if not _claim(OVERALL, started):
        _retry_when_free(refresh_overall_metrics, [token], attempt)
        return "busy"
    try:
        with _ClaimKeeper(OVERALL, started):
            refresh.refresh_overall(now=started, recent_only=True)
    except BaseException:
        RefreshRequest.objects.filter(scope=OVERALL).update(running_since=None)
        raise
    _release(OVERALL, started)
    return "computed"


@shared_task(name="trustdesk.metrics.tasks.recompute_all_metrics", **TASK_OPTIONS)
def recompute_all_metrics() -> int:
    """Beat, every 10 minutes: every snapshot and trust score, catching up on anything missed."""
    started = timezone.now()
    written = refresh.recompute_all(now=started)
    RefreshRequest.objects.filter(requested_at__lte=started, running_since__isnull=True).update(
        pending_since=None
    )
    return written


@shared_task(name="trustdesk.metrics.tasks.catch_up_refreshes", bind=True, **TASK_OPTIONS)
def catch_up_refreshes(self) -> int:
    """Beat, every 30 s: re-send the refresh of every scope whose request has waited longer
    than CATCH_UP_AFTER with no live claim (its task was never sent because the broker was
    down, was lost with a killed worker, or gave up while busy). Returns how many were sent."""
    now = timezone.now()
    rows = RefreshRequest.objects.filter(pending_since__lt=now - CATCH_UP_AFTER).filter(
        Q(running_since__isnull=True) | Q(running_since__lt=now - claim_ttl())
    )
    queue = _queue_of(self.request)
    sent = 0
    for scope in rows.values_list("scope", flat=True):
        if scope == OVERALL:
            sent += _enqueue(refresh_overall_metrics, [None], 0, queue)
        elif scope.startswith("agent:") and scope[6:].isdigit():
            sent += _enqueue(refresh_agent_metrics, [int(scope[6:]), None], 0, queue)
    if sent:
        logger.info("metrics: caught up %d pending refresh(es)", sent)
    return sent
