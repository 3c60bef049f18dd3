from django.urls import path

from trustdesk.pacts import views
from trustdesk.pacts.api import api

urlpatterns = [
    path("agents/", views.agents_index, name="agents"),
    path("pacts/", views.pacts_index, name="pacts"),
    path("schemas/pact-v1.json", views.pact_schema, name="pact_schema"),
    path("api/v1/", api.urls),
]
