"""Pages: webhook subscriptions, notification channels, and each message's delivery log.

Every internal role reads them (what was sent, and whether it arrived); incident managers add,
disable and enable subscriptions and channels and send failed messages again.
"""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count, Prefetch, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from trustdesk.core.decorators import permission_required
from trustdesk.core.pages import flash_problems, show_problems, wants_partial
from trustdesk.core.roles import can, roles_for
from trustdesk.notify import actions
from trustdesk.notify.events import EVENT_TYPES
from trustdesk.notify.forms import ChannelForm, DisableForm, WebhookForm
from trustdesk.notify.models import (
    Attempt,
    Message,
    MessageStatus,
    NotificationChannel,
    WebhookSubscription,
)

MANAGES = roles_for("manage_notifications")  # who may: core.roles.PERMISSIONS
LOG_ROWS = 100


def _with_counts(qs):
    return qs.annotate(
        pending=Count("messages", filter=Q(messages__status=MessageStatus.PENDING)),
        failed=Count("messages", filter=Q(messages__status=MessageStatus.FAILED)),
        delivered=Count("messages", filter=Q(messages__status=MessageStatus.DELIVERED)),
    )


def _log(field: str, target) -> list[Message]:
    """The target's latest messages with their attempts: two queries whatever the history."""
    return list(
        Message.objects.filter(**{field: target})
        .select_related("publication")
        .prefetch_related(Prefetch("attempts", queryset=Attempt.objects.order_by("pk")))
        .order_by("-pk")[:LOG_ROWS]
    )


# ---------------------------------------------------------------- webhooks


@require_GET
@permission_required("read")
def webhooks(request: HttpRequest) -> HttpResponse:
    subs = _with_counts(WebhookSubscription.objects.all()).order_by("-enabled", "pk")
    return render(
        request,
        "notify/webhooks.html",
        {"subscriptions": subs, "event_types": EVENT_TYPES, "can_manage": _manages(request)},
    )


@require_http_methods(["GET", "POST"])
@permission_required("manage_notifications")
def webhook_new(request: HttpRequest) -> HttpResponse:
    form = WebhookForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            sub, secret = actions.add_webhook(
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"],
                secret=form.cleaned_data["secret"],
                description=form.cleaned_data["description"],
                by=request.user,
            )
        except actions.NotifyError as exc:
            show_problems(form, exc, by_field=True)
        else:
            response = render(
                request, "notify/webhook_created.html", {"sub": sub, "secret": secret}, status=201
            )
            response["Cache-Control"] = "no-store"  # the page carries the secret
            return response
    status = 400 if form.is_bound else 200
    return render(request, "notify/webhook_new.html", {"form": form}, status=status)


@require_GET
@permission_required("read")
def webhook_detail(request: HttpRequest, pk: int) -> HttpResponse:
    sub = get_object_or_404(
        WebhookSubscription.objects.select_related("created_by", "disabled_by"), pk=pk
    )
    return render(
        request,
        "notify/target_detail.html",
        {
            "target": sub,
            "kind": "webhook",
            "log": _log("subscription", sub),
            "can_manage": _manages(request),
            "disable_form": DisableForm(),
        },
    )


# ---------------------------------------------------------------- notification channels


@require_GET
@permission_required("read")
def channels(request: HttpRequest) -> HttpResponse:
    rows = _with_counts(NotificationChannel.objects.all()).order_by("-enabled", "name", "pk")
    return render(
        request,
        "notify/channels.html",
        {"channels": rows, "can_manage": _manages(request)},
    )


@require_http_methods(["GET", "POST"])
@permission_required("manage_notifications")
def channel_new(request: HttpRequest) -> HttpResponse:
    form = ChannelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            channel = actions.add_channel(
                name=form.cleaned_data["name"],
                apprise_url=form.cleaned_data["apprise_url"],
                events=form.cleaned_data["events"],
                min_severity=form.cleaned_data["min_severity"],
                by=request.user,
            )
        except actions.NotifyError as exc:
            show_problems(form, exc, by_field=True)
        else:
            messages.success(request, f"Channel “{channel.name}” added.")
            return redirect(channel)
    status = 400 if form.is_bound else 200
    return render(request, "notify/channel_new.html", {"form": form}, status=status)


@require_GET
@permission_required("read")
def channel_detail(request: HttpRequest, pk: int) -> HttpResponse:
    channel = get_object_or_404(
        NotificationChannel.objects.select_related("created_by", "disabled_by"), pk=pk
    )
    return render(
        request,
        "notify/target_detail.html",
        {
            "target": channel,
            "kind": "channel",
            "log": _log("channel", channel),
            "can_manage": _manages(request),
            "disable_form": DisableForm(),
        },
    )


# ---------------------------------------------------------------- disable and enable


def _toggle(request: HttpRequest, model, pk: int, enable: bool) -> HttpResponse:
    target = get_object_or_404(model, pk=pk)
    form = DisableForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, f"Not changed: {error}")
        return redirect(target)
    reason = form.cleaned_data["reason"]
    try:
        if enable:
            actions.enable_target(target, by=request.user)
        else:
            actions.disable_target(target, by=request.user, reason=reason)
    except actions.NotifyError as exc:
        flash_problems(request, exc)
    else:
        messages.success(request, f"{target} {'enabled' if enable else 'disabled'}.")
    return redirect(target)


@require_POST
@permission_required("manage_notifications")
def webhook_disable(request: HttpRequest, pk: int) -> HttpResponse:
    return _toggle(request, WebhookSubscription, pk, enable=False)


@require_POST
@permission_required("manage_notifications")
def webhook_enable(request: HttpRequest, pk: int) -> HttpResponse:
    return _toggle(request, WebhookSubscription, pk, enable=True)


@require_POST
@permission_required("manage_notifications")
def channel_disable(request: HttpRequest, pk: int) -> HttpResponse:
    return _toggle(request, NotificationChannel, pk, enable=False)


@require_POST
@permission_required("manage_notifications")
def channel_enable(request: HttpRequest, pk: int) -> HttpResponse:
    return _toggle(request, NotificationChannel, pk, enable=True)


# ---------------------------------------------------------------- one message


def _message(pk: int) -> Message:
    return get_object_or_404(
        Message.objects.select_related("publication", "subscription", "channel", "recipient"),
        pk=pk,
    )


def _manages(request: HttpRequest) -> bool:
    return can(request.user, "manage_notifications")


def _message_page(request: HttpRequest, message: Message, *, status: int = 200) -> HttpResponse:
    template = "notify/message_detail.html"
    if wants_partial(request):
        template += "#main"
    context = {
        "message": message,
        "attempts": list(message.attempts.order_by("pk")),
        "can_manage": _manages(request),
        "show_messages": wants_partial(request),
    }
    return render(request, template, context, status=status)


@require_GET
@permission_required("read")
@vary_on_headers("HX-Request")
def message_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _message_page(request, _message(pk))


@require_POST
@permission_required("manage_notifications")
@vary_on_headers("HX-Request")
def message_redeliver(request: HttpRequest, pk: int) -> HttpResponse:
    message = _message(pk)
    try:
        actions.redeliver_message(message, by=request.user)
    except actions.NotifyError as exc:
        flash_problems(request, exc)
        if wants_partial(request):
            return _message_page(request, _message(pk), status=422)
    else:
        messages.success(request, f"{message.webhook_id} will be sent again.")
        if wants_partial(request):
            return _message_page(request, _message(pk))
    return redirect(message)
