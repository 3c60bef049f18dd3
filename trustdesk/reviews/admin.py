"""Read-only admin: reviews records are written by `reviews.actions` only and never changed."""

from __future__ import annotations

from django.contrib import admin

from trustdesk.core.admin import ReadOnlyAdmin
from trustdesk.reviews.models import (
    AgendaItem,
    Attestation,
    MeetingNote,
    OperatingModelChange,
    RecoveryDecision,
    ReentryCondition,
    ReviewMeeting,
    SignOff,
)


@admin.register(RecoveryDecision)
class RecoveryDecisionAdmin(ReadOnlyAdmin):
    list_display = ("incident", "decision", "scope_after", "override", "decided_by", "decided_at")
    list_filter = ("decision", "override")
    search_fields = ("incident__key", "rationale", "justification")


@admin.register(Attestation)
class AttestationAdmin(ReadOnlyAdmin):
    list_display = ("decision", "by", "can_explain", "at")
    list_filter = ("can_explain",)


@admin.register(OperatingModelChange)
class OperatingModelChangeAdmin(ReadOnlyAdmin):
    list_display = ("incident", "kind", "by", "at")
    list_filter = ("kind",)


@admin.register(ReentryCondition)
class ReentryConditionAdmin(ReadOnlyAdmin):
    list_display = ("incident", "kind", "status", "checked_at")
    list_filter = ("kind", "status")


@admin.register(SignOff)
class SignOffAdmin(ReadOnlyAdmin):
    list_display = ("incident", "by", "role", "at")


@admin.register(ReviewMeeting)
class ReviewMeetingAdmin(ReadOnlyAdmin):
    list_display = ("title", "scheduled_at", "facilitator", "status")


@admin.register(AgendaItem)
class AgendaItemAdmin(ReadOnlyAdmin):
    list_display = ("meeting", "position", "incident")


@admin.register(MeetingNote)
class MeetingNoteAdmin(ReadOnlyAdmin):
    list_display = ("meeting", "author", "at")
