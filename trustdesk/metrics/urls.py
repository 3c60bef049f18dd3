from django.urls import path

from trustdesk.metrics import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("metrics/export.csv", views.metrics_export, name="metrics_export"),
    path("metrics/refresh/", views.metrics_refresh, name="metrics_refresh"),
    path("metrics/<slug:metric>/", views.metrics_drilldown, name="metrics_drilldown"),
]
