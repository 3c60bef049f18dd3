from django.contrib import admin

from trustdesk.diligence.models import ShareLink, ShareLinkView


@admin.register(ShareLink)
class ShareLinkAdmin(admin.ModelAdmin):
    """Read-only: links are made and revoked through the diligence pages (actions.py)."""

    list_display = ("label", "created_at", "expires_at", "revoked_at", "include_evidence")
    search_fields = ("label",)
    readonly_fields = [f.name for f in ShareLink._meta.fields] + ["agents", "incidents"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ShareLinkView)
class ShareLinkViewAdmin(admin.ModelAdmin):
    list_display = ("link", "at", "what", "ip_hash", "user_agent")
    list_filter = ("what",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
