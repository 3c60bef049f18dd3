"""Read-only admin for incidents, their event log and evidence.

Every change goes through `incidents.lifecycle` (the chain, the gates, the denormalized fields);
the admin only shows. Events and evidence are append-only, so no one gets add, change or delete
here, superusers included.
"""

from __future__ import annotations

from django.contrib import admin

from trustdesk.core.admin import ReadOnlyAdmin
from trustdesk.incidents.models import BreachLink, Event, Evidence, Incident


@admin.register(Incident)
class IncidentAdmin(ReadOnlyAdmin):
    list_display = ("key", "title", "agent", "severity", "state", "detected_at", "version")
    list_filter = ("state", "severity", "assumption")
    search_fields = ("key", "title")
    list_select_related = ("agent",)
    date_hierarchy = "detected_at"


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("incident", "seq", "type", "at", "actor_name", "short_hash")
    list_filter = ("type",)
    search_fields = ("incident__key", "hash")
    list_select_related = ("incident",)

    @admin.display(description="hash")
    def short_hash(self, obj: Event) -> str:
        return obj.hash[:12]


@admin.register(Evidence)
class EvidenceAdmin(ReadOnlyAdmin):
    list_display = ("incident", "kind", "description", "content_type", "size", "short_sha")
    list_filter = ("kind", "content_type")
    search_fields = ("incident__key", "sha256", "description")
    list_select_related = ("incident",)

    @admin.display(description="SHA-256")
    def short_sha(self, obj: Evidence) -> str:
        return obj.sha256[:12]


@admin.register(BreachLink)
class BreachLinkAdmin(ReadOnlyAdmin):
    list_display = ("evaluation", "incident", "opened_incident", "created_at")
    list_select_related = ("incident", "evaluation")
