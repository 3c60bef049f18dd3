"""Read-only admin for incidents, their event log and evidence.

Every change goes through `incidents.lifecycle` (the chain, the gates, the denormalized fields);
the admin only shows. Events and evidence are append-only, so no one gets add, change or delete
here, superusers included.
"""

from __future__ import annotations

from django.contrib import admin

from trustdesk.core.admin import ReadOnlyAdmin, hash_prefix
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
    list_display = ("incident", "seq", "type", "at", "actor_name", hash_prefix("hash", "hash"))
    list_filter = ("type",)
    search_fields = ("incident__key", "hash")
    list_select_related = ("incident",)


@admin.register(Evidence)
class EvidenceAdmin(ReadOnlyAdmin):
    list_display = (
        "incident",
        "kind",
        "description",
        "content_type",
        "size",
        hash_prefix("sha256", "SHA-256"),
    )
    list_filter = ("kind", "content_type")
    search_fields = ("incident__key", "sha256", "description")
    list_select_related = ("incident",)


@admin.register(BreachLink)
class BreachLinkAdmin(ReadOnlyAdmin):
    list_display = ("evaluation", "incident", "opened_incident", "created_at")
    list_select_related = ("incident", "evaluation")
