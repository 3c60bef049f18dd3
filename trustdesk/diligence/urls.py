from django.urls import path

from trustdesk.diligence import log_views, views

urlpatterns = [
    # The transparency log (section 15): signed-in users, or a share link's ?token=.
    path("log/checkpoint", log_views.log_checkpoint, name="log_checkpoint"),
    path("log/proof/inclusion", log_views.log_inclusion_proof, name="log_inclusion_proof"),
    path("log/proof/consistency", log_views.log_consistency_proof, name="log_consistency_proof"),
    path("diligence/", views.diligence_index, name="diligence"),
    path("diligence/links/new/", views.share_link_new, name="share_link_new"),
    path("diligence/links/<int:pk>/", views.share_link_detail, name="share_link_detail"),
    path("diligence/links/<int:pk>/revoke/", views.share_link_revoke, name="share_link_revoke"),
    path("incidents/<str:key>/bundle.zip", views.incident_bundle, name="incident_bundle"),
    # The buyer view: no login, the token is the credential.
    path("d/<str:token>/", views.buyer_view, name="buyer_view"),
    path("d/<str:token>/bundle.zip", views.buyer_bundle, name="buyer_bundle"),
    path(
        "d/<str:token>/pacts/<slug:pact>/v<int:number>.json",
        views.buyer_pact,
        {"fmt": "json"},
        name="buyer_pact_json",
    ),
    path(
        "d/<str:token>/pacts/<slug:pact>/v<int:number>.yaml",
        views.buyer_pact,
        {"fmt": "yaml"},
        name="buyer_pact_yaml",
    ),
]
