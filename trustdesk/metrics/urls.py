from django.urls import path

from trustdesk.metrics import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
]
