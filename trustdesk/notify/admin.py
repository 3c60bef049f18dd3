"""The admin only reads: changes go through the pages and commands (notify.actions)."""

from django.contrib import admin

from trustdesk.core.admin import ReadOnlyAdmin
from trustdesk.notify.models import Message, NotificationChannel, WebhookSubscription


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(ReadOnlyAdmin):
    list_display = ("pk", "url", "enabled", "failing_since")
    exclude = ("secret",)


@admin.register(NotificationChannel)
class NotificationChannelAdmin(ReadOnlyAdmin):
    list_display = ("pk", "name", "enabled", "min_severity")
    exclude = ("apprise_url",)


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ("webhook_id", "kind", "incident_key", "status", "tries", "created_at")
    list_filter = ("kind", "status")
