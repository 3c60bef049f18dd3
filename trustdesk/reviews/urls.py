from django.urls import path

from trustdesk.core.pages import step_urls
from trustdesk.reviews import mywork_views, views

urlpatterns = [
    path("reviews/", views.reviews_index, name="reviews"),
    path("my-work/", mywork_views.my_work_page, name="my_work"),
    path("reviews/meetings/", views.meeting_list, name="review_meetings"),
    path("reviews/meetings/new/", views.meeting_create, name="review_meeting_new"),
    path("reviews/meetings/<int:pk>/", views.meeting_detail, name="review_meeting"),
    path("reviews/meetings/<int:pk>/changes", views.meeting_changes, name="review_meeting_changes"),
    path("reviews/meetings/<int:pk>/notes/", views.meeting_note, name="review_meeting_note"),
    path(
        "reviews/meetings/<int:pk>/agenda/", views.meeting_agenda_add, name="review_meeting_agenda"
    ),
    path("reviews/meetings/<int:pk>/close/", views.meeting_close, name="review_meeting_close"),
    path(
        "reviews/meetings/<int:pk>/incidents/<str:key>/decide/",
        views.meeting_decide,
        name="review_meeting_decide",
    ),
    path(
        "reviews/meetings/<int:pk>/incidents/<str:key>/attest/",
        views.meeting_attest,
        name="review_meeting_attest",
    ),
    # The incident page's review panel, and the steps its forms post to (views.PANEL_STEPS).
    path("incidents/<str:key>/review/", views.incident_review, name="incident_review"),
    path(
        "incidents/<str:key>/review/recheck/",
        views.incident_review_recheck,
        name="incident_review_recheck",
    ),
    *step_urls("incidents/<str:key>/review/", views.PANEL_STEPS),
]
