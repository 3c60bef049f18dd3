from django.contrib import admin

from trustdesk.core.admin import ReadOnlyAdmin
from trustdesk.diligence.models import ShareLink, ShareLinkView


@admin.register(ShareLink)
class ShareLinkAdmin(ReadOnlyAdmin):
    """Read-only: links are made and revoked through the diligence pages (actions.py)."""

    list_display = ("label", "created_at", "expires_at", "revoked_at", "include_evidence")
    search_fields = ("label",)
    readonly_fields = [f.name for f in ShareLink._meta.fields] + ["agents", "incidents"]


@admin.register(ShareLinkView)
class ShareLinkViewAdmin(ReadOnlyAdmin):
    list_display = ("link", "at", "what", "ip_hash", "user_agent")
    list_filter = ("what",)
