from django.urls import path

# This module registers its endpoint on `api` when imported, so before api.urls is read:
# POST /eval-logs. (POST /incidents/{key}/traces is registered by the incidents app's ready().)
from trustdesk.pacts import api_eval_logs, views  # noqa: F401
from trustdesk.pacts.api import api

urlpatterns = [
    path("agents/", views.agents_index, name="agents"),
    path("agents/<slug:key>/", views.agent_detail, name="agent_detail"),
    path("agents/<slug:key>/profile/", views.agent_profile, name="agent_profile"),
    path("pacts/", views.pacts_index, name="pacts"),
    path("pacts/new/", views.pact_new, name="pact_new"),
    path("pacts/<slug:key>/", views.pact_detail, name="pact_detail"),
    path("pacts/<slug:key>/diff/", views.pact_diff, name="pact_diff"),
    path("pacts/<slug:key>/v<int:number>/", views.pact_detail, name="pact_version"),
    path("pacts/<slug:key>/v<int:number>/edit/", views.pact_edit, name="pact_edit"),
    path("pacts/<slug:key>/v<int:number>/activate/", views.pact_activate, name="pact_activate"),
    path("pacts/<slug:key>/v<int:number>/review/", views.pact_review, name="pact_review"),
    path(
        "pacts/<slug:key>/v<int:number>/download.<str:fmt>",
        views.pact_download,
        name="pact_download",
    ),
    path(
        "pacts/<slug:key>/v<int:number>/clauses/<slug:clause>/",
        views.clause_detail,
        name="clause_detail",
    ),
    path("evaluations/<int:evaluation_id>/dispute/", views.dispute_new, name="dispute_new"),
    path("disputes/", views.disputes_index, name="disputes"),
    path("disputes/<int:dispute_id>/", views.dispute_detail, name="dispute_detail"),
    path("api-tokens/", views.api_tokens, name="api_tokens"),
    path("api-tokens/<int:token_id>/revoke/", views.api_token_revoke, name="api_token_revoke"),
    path("schemas/pact-v1.json", views.pact_schema, name="pact_schema"),
    path("evaluation-logs/<str:sha256>/", views.evaluation_log_download, name="evaluation_log"),
    path("api/v1/", api.urls),
]
