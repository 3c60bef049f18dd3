"""Pages: webhook subscriptions, notification channels, and each message's delivery log.

Every internal role reads them (what was sent, and whether it arrived); incident managers add,
disable and enable subscriptions and channels and send failed messages again.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.db.models import Count, Prefetch, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from trustdesk.core.attempts import attempt, flash_outcome
from trustdesk.core.decorators import permission_required
from trustdesk.core.pages import flash_problems, render_page, wants_partial
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


def _new_form(request: HttpRequest, template: str, form) -> HttpResponse:
    """The form to add a subscription or a channel: empty (200), or posted with its problems."""
    return render(request, template, {"form": form}, status=400 if form.is_bound else 200)


def _target_page(request: HttpRequest, model, pk: int, *, kind: str, log_of: str) -> HttpResponse:
    """A subscription's or a channel's page; `log_of` names its field on Message."""
    target = get_object_or_404(model.objects.select_related("created_by", "disabled_by"), pk=pk)
    context = {
        "target": target,
        "kind": kind,
        "log": _log(log_of, target),
        "can_manage": _manages(request),
        "disable_form": DisableForm(),
    }
    return render(request, "notify/target_detail.html", context)


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
    # The form's fields are the action's arguments, and its problems name them.
    added = attempt(form, lambda data: actions.add_webhook(**data, by=request.user), by_field=True)
    if not added:
        return _new_form(request, "notify/webhook_new.html", form)
    sub, secret = added
    response = render(
        request, "notify/webhook_created.html", {"sub": sub, "secret": secret}, status=201
    )
    response["Cache-Control"] = "no-store"  # the page carries the secret
    return response


@require_GET
@permission_required("read")
def webhook_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _target_page(request, WebhookSubscription, pk, kind="webhook", log_of="subscription")


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
    channel = attempt(
        form, lambda data: actions.add_channel(**data, by=request.user), by_field=True
    )
    if not channel:
        return _new_form(request, "notify/channel_new.html", form)
    messages.success(request, f"Channel “{channel.name}” added.")
    return redirect(channel)


@require_GET
@permission_required("read")
def channel_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _target_page(request, NotificationChannel, pk, kind="channel", log_of="channel")


# ---------------------------------------------------------------- disable and enable


def _toggle(request: HttpRequest, model, pk: int, enable: bool) -> HttpResponse:
    target = get_object_or_404(model, pk=pk)
    form = DisableForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, f"Not changed: {error}")
        return redirect(target)
    if enable:
        flash_outcome(
            request, lambda: actions.enable_target(target, by=request.user), f"{target} enabled."
        )
    else:
        reason = form.cleaned_data["reason"]
        flash_outcome(
            request,
            lambda: actions.disable_target(target, by=request.user, reason=reason),
            f"{target} disabled.",
        )
    return redirect(target)


def _toggle_view(model, *, enable: bool) -> Callable[[HttpRequest, int], HttpResponse]:
    """The button that enables (or disables) one subscription or channel."""

    @require_POST
    @permission_required("manage_notifications")
    def toggle(request: HttpRequest, pk: int) -> HttpResponse:
        return _toggle(request, model, pk, enable=enable)

    return toggle


webhook_disable = _toggle_view(WebhookSubscription, enable=False)
webhook_enable = _toggle_view(WebhookSubscription, enable=True)
channel_disable = _toggle_view(NotificationChannel, enable=False)
channel_enable = _toggle_view(NotificationChannel, enable=True)


# ---------------------------------------------------------------- one message


def _message(pk: int) -> Message:
    return get_object_or_404(
        Message.objects.select_related("publication", "subscription", "channel", "recipient"),
        pk=pk,
    )


def _manages(request: HttpRequest) -> bool:
    return can(request.user, "manage_notifications")


def _message_page(request: HttpRequest, message: Message, *, status: int = 200) -> HttpResponse:
    context = {
        "message": message,
        "attempts": list(message.attempts.order_by("pk")),
        "can_manage": _manages(request),
        "show_messages": wants_partial(request),
    }
    return render_page(
        request, "notify/message_detail.html", context, partial="main", status=status
    )


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
    status = 200
    try:
        actions.redeliver_message(message, by=request.user)
    except actions.NotifyError as exc:
        flash_problems(request, exc)
        status = 422
    else:
        messages.success(request, f"{message.webhook_id} will be sent again.")
    if wants_partial(request):
        # The region again, read afresh, with the message just flashed.
        return _message_page(request, _message(pk), status=status)
    return redirect(message)
