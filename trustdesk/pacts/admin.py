"""The Django admin for the pacts app: a window onto the records, not a way around the rules.

Pact versions, clauses, evaluations, disputes and tokens are read-only here: a document and its
clauses change only through pacts.actions (drafts) and never once active; an agent's scope
changes only through the incident lifecycle. Nothing can be deleted.
"""

from __future__ import annotations

from django.contrib import admin

from trustdesk.core.admin import ReadOnlyAdmin
from trustdesk.pacts.models import (
    Agent,
    ApiToken,
    Clause,
    Dispute,
    Evaluation,
    Pact,
    PactVersion,
)


class ClauseInline(admin.TabularInline):
    model = Clause
    fields = ("position", "key", "assumption", "metric", "op", "target", "window", "on_breach")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ("key", "name", "owner", "scope", "scope_changed_at")
    list_filter = ("scope",)
    search_fields = ("key", "name", "owner")
    # Name, owner and description are plain facts; the scope is changed by incidents only.
    readonly_fields = (
        "key",
        "scope",
        "trust_score",
        "scope_changed_at",
        "scope_reason",
        "scope_incident",
        "retired_at",
        "created_at",
    )

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # agents come with their pacts (import or drafting)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Pact)
class PactAdmin(ReadOnlyAdmin):
    list_display = ("key", "agent", "title", "owner", "created_at")
    search_fields = ("key", "title", "agent__key")
    list_select_related = ("agent",)


@admin.register(PactVersion)
class PactVersionAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "status", "risk_tier", "review_due", "stale_since", "sha256")
    list_filter = ("status", "risk_tier")
    search_fields = ("pact__key", "sha256")
    list_select_related = ("pact",)
    inlines = [ClauseInline]


@admin.register(Clause)
class ClauseAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "assumption", "op", "target", "window", "on_breach")
    list_filter = ("assumption", "on_breach")
    list_select_related = ("version__pact",)


@admin.register(Evaluation)
class EvaluationAdmin(ReadOnlyAdmin):
    list_display = ("clause", "value", "passed", "is_breach", "measured_at", "source", "voided_at")
    list_filter = ("passed", "is_breach", "source")
    search_fields = ("external_id", "source")
    list_select_related = ("clause__version__pact",)


@admin.register(Dispute)
class DisputeAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "status", "evaluation", "incident", "opened_by", "opened_at")
    list_filter = ("status",)


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = ("source", "prefix", "label", "created_by", "last_used_at", "revoked_at")
    exclude = ("token_hash",)
