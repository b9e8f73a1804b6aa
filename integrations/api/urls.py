"""Routes of the integrations API, included under /api/v1/."""

from django.urls import URLPattern, URLResolver
from rest_framework.routers import DefaultRouter

from integrations.api import views

router = DefaultRouter()
router.include_root_view = False
router.register("integrations", views.IntegrationViewSet, basename="integration")

urlpatterns: list[URLPattern | URLResolver] = [*router.urls]
