from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("trustdesk.core.urls")),
    path("", include("trustdesk.metrics.urls")),
    path("", include("trustdesk.pacts.urls")),
    path("", include("trustdesk.incidents.urls")),
    path("", include("trustdesk.reviews.urls")),
    path("", include("trustdesk.diligence.urls")),
    path("", include("trustdesk.agentapi.urls")),
    path("", include("trustdesk.notify.urls")),
    path("admin/", admin.site.urls),
]

handler400 = "trustdesk.core.views.bad_request"
handler403 = "trustdesk.core.views.permission_denied"
handler404 = "trustdesk.core.views.page_not_found"
handler500 = "trustdesk.core.views.server_error"
