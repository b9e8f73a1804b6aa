"""Routes of the webhooks API, included under /api/v1/."""

from django.urls import URLPattern, URLResolver, path
from rest_framework.routers import DefaultRouter

from notifications.api import views

router = DefaultRouter()
router.include_root_view = False
router.register("webhooks/endpoints", views.EndpointViewSet, basename="webhook-endpoint")
router.register("webhooks/deliveries", views.DeliveryViewSet, basename="webhook-delivery")

urlpatterns: list[URLPattern | URLResolver] = [
    *router.urls,
    path(
        "notifications/settings/",
        views.NotificationSettingsView.as_view(),
        name="notification-settings",
    ),
]
