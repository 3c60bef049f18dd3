from django.urls import path

from trustdesk.agentapi import views

urlpatterns = [
    path(".well-known/trustdesk-keys.json", views.trustdesk_keys, name="trustdesk_keys"),
]
