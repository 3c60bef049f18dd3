"""Shared fixtures: users per role, real services (Redis worker, Chromium) and their policy.

Worker and browser tests run whenever their service is reachable. With
TRUSTDESK_REQUIRE_SERVICES=1 (as .ci/run sets) a missing PostgreSQL, Redis or Chromium fails the
run instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.state_machine import _incident_columns_follow_events  # noqa: F401  (autouse check)

# Live-server tests drive a sync browser from the test thread (pytest-django + Playwright).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
# "gw0", "gw1", ... in the processes of `pytest -n N` (pytest-xdist, as `make test` runs it).
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
WORKER_LOG = ARTIFACTS / f"celery-worker{'-' + XDIST_WORKER if XDIST_WORKER else ''}.log"
CHROMIUM = os.environ.get("TRUSTDESK_CHROMIUM", "/usr/bin/chromium")
REQUIRE_SERVICES = os.environ.get("TRUSTDESK_REQUIRE_SERVICES") == "1"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def missing_service(what: str) -> None:
    """Skip, or fail under TRUSTDESK_REQUIRE_SERVICES=1."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required (TRUSTDESK_REQUIRE_SERVICES=1) but not available")
    pytest.skip(f"{what} is not available")


def pytest_sessionstart(session: pytest.Session) -> None:
    if REQUIRE_SERVICES:
        from django.conf import settings

        engine = settings.DATABASES["default"]["ENGINE"]
        if not engine.endswith("postgresql"):
            raise pytest.UsageError(
                "TRUSTDESK_REQUIRE_SERVICES=1 but DATABASE_URL does not point at PostgreSQL"
            )


@pytest.fixture(autouse=True)
def _fast_hasher_and_eager_tasks(settings) -> Iterator[None]:
    """A fast password hasher; Celery tasks in-process unless a test starts a real worker."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Counters (rate limits, debouncing) must not leak between tests or runs through Redis.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    from trustdesk.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


# ---------------------------------------------------------------- users and roles


@pytest.fixture
def make_user(db) -> Callable[..., object]:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    counter = iter(range(1, 1_000_000))

    def make(*roles: str, username: str | None = None, password: str = "pw-for-tests"):
        User = get_user_model()
        user = User.objects.create_user(
            username=username or f"{'-'.join(roles) or 'norole'}-{next(counter)}",
            password=password,
        )
        # A transactional test's flush empties auth_group (filled by a data migration).
        user.groups.add(*(Group.objects.get_or_create(name=role)[0] for role in roles))
        return user

    return make


@pytest.fixture
def role_groups(transactional_db) -> None:
    """A transactional test's flush empties auth_group, which a data migration filled: put the
    role groups back before a live-server test logs people in with roles."""
    from django.contrib.auth.models import Group

    from trustdesk.core.roles import ROLES

    for role in ROLES:
        Group.objects.get_or_create(name=role)


@pytest.fixture
def client_for(client, make_user) -> Callable[..., object]:
    """`client_for("operator")` returns a test client logged in as a new user with that role."""
    from django.test import Client

    def login(*roles: str):
        c = Client()
        user = make_user(*roles)
        c.force_login(user)
        c.user = user
        return c

    return login


@pytest.fixture
def media(settings, tmp_path) -> Path:
    """Evidence files go to a private folder per test."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


class RateClock:
    """The buyer pages' rate-limit clock, pinned 5 s into a window; `advance` moves it."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def rate_clock(monkeypatch) -> RateClock:
    """Pin the rate limiter's clock and start with no counters.

    With the real clock a window edge can fall between a test's requests and restart the count.
    1_800_000_000 is a multiple of 60 and of 3600, so every test window starts there.
    """
    from django.core.cache import cache

    from trustdesk.diligence import ratelimit

    clock = RateClock(1_800_000_005.0)
    monkeypatch.setattr(ratelimit, "clock", clock)
    cache.clear()
    ratelimit._local.clear()
    return clock


# ---------------------------------------------------------------- Redis and a real worker


def redis_url() -> str:
    """The Redis of this test process. Under pytest-xdist each process takes its own database
    (REDIS_URL's number plus the process's), so real Celery workers and their keys never meet."""
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    if not XDIST_WORKER:
        return url
    parts = urlsplit(url)
    number = int(parts.path.strip("/") or 0) + int(XDIST_WORKER.removeprefix("gw"))
    return urlunsplit(parts._replace(path=f"/{number}"))


def redis_reachable(url: str | None = None) -> bool:
    parts = urlsplit(url or redis_url())
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 1):
            return True
    except OSError:
        return False


def reset_broker_connections(app) -> None:
    """Forget the app's connection pools so the next send uses the current broker_url.

    kombu keeps pools in a registry keyed by connection, so they are dropped, never closed: a
    closed pool would be handed back the next time the same URL is used.
    """
    app._pool = None
    app.amqp._producer_pool = None


def database_url_of_current_connection() -> str:
    """A DATABASE_URL that points a child process at the test database this test uses."""
    from django.db import connection

    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(s['NAME']).resolve()}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def celery_worker(transactional_db) -> Iterator[subprocess.Popen]:
    """A real `celery -A trustdesk worker` against Redis and the test database; stopped by pid.

    Tasks sent from the test go through Redis (not eager) while the fixture is active.
    """
    url = redis_url()
    if not redis_reachable(url):
        missing_service(f"Redis at {url}")
    from trustdesk.celery import app

    queue = f"trustdesk-test-{os.getpid()}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_current_connection(),
        "REDIS_URL": url,
        "DJANGO_SETTINGS_MODULE": "trustdesk.settings",
    }
    log_path = WORKER_LOG
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(log_path, "w")  # noqa: SIM115  (closed in the teardown below)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "trustdesk",
            "worker",
            "--pool=solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-Q",
            queue,
            "--loglevel=INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    old = (app.conf.task_always_eager, app.conf.broker_url, app.conf.task_default_queue)
    app.conf.task_always_eager = False
    app.conf.broker_url = url
    app.conf.task_default_queue = queue
    reset_broker_connections(app)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the worker exited early: see {log_path}")
            if "ready." in log_path.read_text():
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"the worker did not start within 60 s: see {log_path}")
        yield proc
    finally:
        app.conf.task_always_eager, app.conf.broker_url, app.conf.task_default_queue = old
        reset_broker_connections(app)
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def wait_for(predicate: Callable[[], object], timeout: float = 20, interval: float = 0.1):
    """Poll until predicate() is truthy; return its value or fail with a clear message."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout} s")


# ---------------------------------------------------------------- Playwright and Chromium


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        missing_service(f"Chromium at {CHROMIUM}")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_FLAGS}


@pytest.fixture
def screenshot(request) -> Callable[[object, str], Path]:
    """`screenshot(page, "step")` keeps a PNG under test-artifacts/<test name>/."""
    folder = ARTIFACTS / request.node.name.replace("/", "_")
    folder.mkdir(parents=True, exist_ok=True)
    counter = iter(range(1, 1000))

    def take(page, name: str) -> Path:
        path = folder / f"{next(counter):02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def pages_of(browser, login_page):
    """`a, b = pages_of("risk", "operator")`: one page per role, each in its own browser context
    (its own session) and logged in as a new user with that role; closed after the test."""
    contexts = []

    def open_pages(*roles: str, width: int = 1360, height: int = 900) -> list:
        pages = []
        for role in roles:
            contexts.append(browser.new_context(viewport={"width": width, "height": height}))
            pages.append(contexts[-1].new_page())
            login_page(pages[-1], role)
        return pages

    yield open_pages
    for context in contexts:
        context.close()


@pytest.fixture
def login_page(live_server, make_user):
    """Log a new user with `roles` into a Playwright page; returns (page, user)."""

    def login(page, *roles: str, password: str = "pw-for-tests"):
        user = make_user(*roles, password=password)
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/login/" not in url)
        return user

    return login
