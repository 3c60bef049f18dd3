from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from trustdesk.core import email_preference, timezones
from trustdesk.core.decorators import permission_required
from trustdesk.core.models import WorkerHeartbeat


class LoginView(auth_views.LoginView):
    template_name = "core/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)
        timezones.on_login(self.request, form.get_user(), self.request.POST.get("time_zone"))
        return response


class TimeZoneForm(forms.Form):
    time_zone = forms.ChoiceField(label="Time zone", choices=())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = timezones.zone_choices()


class EmailPreferenceForm(forms.Form):
    email_notifications = forms.BooleanField(
        label="E-mail me about what is mine",
        required=False,
        help_text="Incidents you lead, decisions you are asked to attest, share links you made.",
    )


@permission_required("read")
@require_http_methods(["GET", "POST"])
def time_zone(request: HttpRequest) -> HttpResponse:
    """Choose the time zone pages show times in (exports stay UTC); the page also holds the
    e-mail preference (`email_settings` takes its form)."""
    current = request.session.get(timezones.SESSION_KEY) or timezones.DEFAULT
    form = TimeZoneForm(request.POST or None, initial={"time_zone": current})
    if request.method == "POST" and form.is_valid():
        name = timezones.set_time_zone(
            request.user, form.cleaned_data["time_zone"], request=request
        )
        messages.success(request, f"Times are now shown in {name}.")
        return redirect("time_zone")
    email_form = EmailPreferenceForm(
        initial={"email_notifications": email_preference.wants_email(request.user)}
    )
    return render(
        request,
        "core/time_zone.html",
        {"form": form, "current": current, "email_form": email_form},
    )


@permission_required("read")
@require_POST
def email_settings(request: HttpRequest) -> HttpResponse:
    """Turn e-mail about what is one's own on or off (docs/design.md section 12); an unticked
    box, as browsers send it, turns it off."""
    form = EmailPreferenceForm(request.POST)
    form.is_valid()  # a single optional checkbox: always valid
    on = email_preference.set_email_notifications(
        request.user, on=form.cleaned_data["email_notifications"]
    )
    messages.success(
        request,
        "You will get e-mail about what is yours."
        if on
        else "You will get no e-mail about what is yours.",
    )
    return redirect("time_zone")


def _broker_status() -> str:
    """ "eager" (no broker configured), "ok" or "unreachable", within HEALTHZ_REDIS_TIMEOUT.

    A plain Redis PING with short socket timeouts: kombu's own connect retries took about 2 s
    to say what a closed port says at once.
    """
    from trustdesk.celery import app

    if app.conf.task_always_eager:
        return "eager"
    url = app.conf.broker_url or ""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return _kombu_status(app)
    import redis

    timeout = settings.HEALTHZ_REDIS_TIMEOUT
    try:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=timeout, retry_on_timeout=False
        )
        try:
            client.ping()
        finally:
            client.close()
    except Exception:  # any transport error means the broker cannot be reached
        return "unreachable"
    return "ok"


def _kombu_status(app) -> str:
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=settings.HEALTHZ_REDIS_TIMEOUT)
    except Exception:  # any transport error means the broker cannot be reached
        return "unreachable"
    return "ok"


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Database, broker and worker heartbeat: 200 when all hold, else 503 naming each problem.

    Without a broker (the embedded default, tasks in-process) there is no worker to hear from,
    so only the database counts. With one, an unreachable broker or a worker heartbeat older
    than HEARTBEAT_STALE_AFTER (or none at all) is a problem: work would not get done.
    """
    body: dict[str, object] = {"database": "ok"}
    problems: list[str] = []
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        beat = WorkerHeartbeat.objects.order_by("-last_seen").values_list("last_seen", flat=True)
        last_seen = beat.first()
    except Exception:
        body["database"] = "unreachable"
        problems.append("database: does not answer")
        last_seen = None
    broker = body["broker"] = _broker_status()
    if broker == "unreachable":
        problems.append(f"broker: Redis does not answer within {settings.HEALTHZ_REDIS_TIMEOUT} s")
    age = None if last_seen is None else (timezone.now() - last_seen).total_seconds()
    body["worker_heartbeat_age_seconds"] = None if age is None else round(age, 1)
    limit = settings.HEARTBEAT_STALE_AFTER.total_seconds()
    if broker != "eager" and body["database"] == "ok":
        if age is None:
            problems.append("worker: no heartbeat was ever recorded (is beat running?)")
        elif age > limit:
            problems.append(f"worker: last heartbeat {age:.0f} s ago (more than {limit:.0f} s)")
    body["problems"] = problems
    body["status"] = "degraded" if problems else "ok"
    return JsonResponse(body, status=503 if problems else 200)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    message = str(exception) if exception and str(exception) else "Your role does not allow this."
    return render(request, "403.html", {"message": message}, status=403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "404.html", status=404)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "400.html", status=400)


def server_error(request: HttpRequest) -> HttpResponse:
    # No context processors that touch the database: the database may be why we are here.
    from django.template import loader

    return HttpResponse(loader.get_template("500.html").render(), status=500)
