from django.urls import path

from trustdesk.pacts import views

urlpatterns = [
    path("agents/", views.agents_index, name="agents"),
    path("pacts/", views.pacts_index, name="pacts"),
]
