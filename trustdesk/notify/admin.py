from django.contrib import admin

from trustdesk.notify.models import Message, NotificationChannel, WebhookSubscription


class ReadOnly(admin.ModelAdmin):
    """The admin only reads: changes go through the pages and commands (notify.actions)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


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
