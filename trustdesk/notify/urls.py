from django.urls import path

from trustdesk.notify import views

urlpatterns = [
    path("webhooks/", views.webhooks, name="webhooks"),
    path("webhooks/new/", views.webhook_new, name="webhook_new"),
    path("webhooks/<int:pk>/", views.webhook_detail, name="webhook_detail"),
    path("webhooks/<int:pk>/disable/", views.webhook_disable, name="webhook_disable"),
    path("webhooks/<int:pk>/enable/", views.webhook_enable, name="webhook_enable"),
    path("notifications/", views.channels, name="notifications"),
    path("notifications/new/", views.channel_new, name="channel_new"),
    path("notifications/<int:pk>/", views.channel_detail, name="channel_detail"),
    path("notifications/<int:pk>/disable/", views.channel_disable, name="channel_disable"),
    path("notifications/<int:pk>/enable/", views.channel_enable, name="channel_enable"),
    path("deliveries/<int:pk>/", views.message_detail, name="message_detail"),
    path("deliveries/<int:pk>/redeliver/", views.message_redeliver, name="message_redeliver"),
]
