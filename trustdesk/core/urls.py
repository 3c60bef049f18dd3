from django.contrib.auth import views as auth_views
from django.urls import path

from trustdesk.core import views

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", views.healthz, name="healthz"),
    path("settings/time-zone/", views.time_zone, name="time_zone"),
    path("settings/e-mail/", views.email_settings, name="email_settings"),
]
