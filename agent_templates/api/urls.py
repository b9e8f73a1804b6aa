"""Routes of the templates API, included under /api/v1/."""

from django.urls import URLPattern, URLResolver, path
from rest_framework.routers import DefaultRouter

from agent_templates.api import views

router = DefaultRouter()
router.include_root_view = False
router.register("templates", views.TemplateViewSet, basename="template")

urlpatterns: list[URLPattern | URLResolver] = [
    path(
        "agents/<uuid:agent_id>/template/",
        views.AgentTemplateView.as_view(),
        name="agent-template",
    ),
    path(
        "agents/<uuid:agent_id>/template/apply/",
        views.AgentTemplateApplyView.as_view(),
        name="agent-template-apply",
    ),
    *router.urls,
]
