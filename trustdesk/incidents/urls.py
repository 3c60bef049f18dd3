from django.urls import path

from trustdesk.incidents import views

urlpatterns = [
    path("incidents/", views.incidents_index, name="incidents"),
    path("incidents/<str:key>/", views.incident_detail, name="incident_detail"),
]
