from django.urls import path

from trustdesk.incidents import live, ownership_views, views

urlpatterns = [
    path("incidents/", views.incidents_index, name="incidents"),
    path("incidents/new/", views.incident_new, name="incident_new"),
    path("incidents/<str:key>/", views.incident_detail, name="incident_detail"),
    path("incidents/<str:key>/changes", live.incident_changes, name="incident_changes"),
    path("incidents/<str:key>/contain/", views.incident_contain, name="incident_contain"),
    path(
        "incidents/<str:key>/apply-containment/",
        views.incident_apply_containment,
        name="incident_apply_containment",
    ),
    path(
        "incidents/<str:key>/evidence/", views.incident_add_evidence, name="incident_add_evidence"
    ),
    path(
        "incidents/<str:key>/evidence/<int:pk>/download/",
        views.evidence_download,
        name="evidence_download",
    ),
    path("incidents/<str:key>/preserve/", views.incident_preserve, name="incident_preserve"),
    path("incidents/<str:key>/classify/", views.incident_classify, name="incident_classify"),
    path("incidents/<str:key>/repair/", views.incident_repair, name="incident_repair"),
    path("incidents/<str:key>/notes/", views.incident_add_note, name="incident_add_note"),
    path(
        "incidents/<str:key>/disputes/", views.incident_open_dispute, name="incident_open_dispute"
    ),
    path(
        "incidents/<str:key>/disputes/<int:pk>/resolve/",
        views.incident_resolve_dispute,
        name="incident_resolve_dispute",
    ),
    # Ownership, clocks and obligations (ownership_views.py).
    path("incidents/<str:key>/assign/", ownership_views.incident_assign, name="incident_assign"),
    path(
        "incidents/<str:key>/actions/",
        ownership_views.incident_action_add,
        name="incident_action_add",
    ),
    path(
        "incidents/<str:key>/actions/<int:number>/",
        ownership_views.incident_action_update,
        name="incident_action_update",
    ),
    path("incidents/<str:key>/assess/", ownership_views.incident_assess, name="incident_assess"),
    path(
        "incidents/<str:key>/close-not-incident/",
        ownership_views.incident_close_not_incident,
        name="incident_close_not_incident",
    ),
    path(
        "incidents/<str:key>/reclassify/",
        ownership_views.incident_reclassify,
        name="incident_reclassify",
    ),
    path(
        "incidents/<str:key>/obligations/<str:regime>/<str:obligation>/",
        ownership_views.obligation_filing,
        name="obligation_filing",
    ),
]
