"""The admin of write-once records: look, never touch (the domain functions are the writers)."""

from __future__ import annotations

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """No add, change or delete: rows are written by the apps' actions and never edited."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def hash_prefix(field: str, description: str):
    """A `list_display` column showing the first 12 characters of the hash in `field`: enough to
    tell rows apart and to find one with a search."""

    @admin.display(description=description)
    def column(obj) -> str:
        return getattr(obj, field)[:12]

    return column
