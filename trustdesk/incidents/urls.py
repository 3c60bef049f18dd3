from django.urls import path

from trustdesk.core.pages import step_urls
from trustdesk.incidents import filing_views, live, views

urlpatterns = [
    path("incidents/", views.incidents_index, name="incidents"),
    path("incidents/new/", views.incident_new, name="incident_new"),
    path("incidents/<str:key>/", views.incident_detail, name="incident_detail"),
    path("incidents/<str:key>/changes", live.incident_changes, name="incident_changes"),
    path(
        "incidents/<str:key>/evidence/<int:pk>/download/",
        views.evidence_download,
        name="evidence_download",
    ),
    path(
        "incidents/<str:key>/obligations/<str:regime>/<str:obligation>/",
        filing_views.obligation_filing,
        name="obligation_filing",
    ),
    # Every form of the incident page posts to its step (views.STEPS).
    *step_urls("incidents/<str:key>/", views.STEPS),
]
