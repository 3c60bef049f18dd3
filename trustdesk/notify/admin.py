from django.contrib import admin

from trustdesk.core.admin import ReadOnlyAdmin
from trustdesk.notify.models import Message, NotificationChannel, WebhookSubscription


class ReadOnly(ReadOnlyAdmin):
    """The admin only reads: changes go through the pages and commands (notify.actions)."""


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(ReadOnly):
    list_display = ("pk", "url", "enabled", "failing_since")
    exclude = ("secret",)


@admin.register(NotificationChannel)
class NotificationChannelAdmin(ReadOnly):
    list_display = ("pk", "name", "enabled", "min_severity")
    exclude = ("apprise_url",)


@admin.register(Message)
class MessageAdmin(ReadOnly):
    list_display = ("webhook_id", "kind", "incident_key", "status", "tries", "created_at")
    list_filter = ("kind", "status")
