"""Routes of the versioned API, `/api/v1/`. Each domain app owns its own routes."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from agents.api import views as agent_views

router = DefaultRouter()
router.include_root_view = False
router.register("agents", agent_views.AgentViewSet, basename="agent")

urlpatterns = [
    path("handles/<str:handle>/", agent_views.HandleAvailabilityView.as_view(), name="handle"),
    path(
        "public/agents/<str:handle>/",
        agent_views.PublicAgentView.as_view(),
        name="public-agent",
    ),
    *router.urls,
    path("", include("usage.api.urls")),
    path("", include("analytics.api.urls")),
    path("", include("invoicing.api.urls")),
    path("", include("conversations.api.urls")),
    path("", include("integrations.api.urls")),
    path("", include("agents.api.audit.urls")),
    path("", include("notifications.api.urls")),
    path("", include("agent_templates.api.urls")),
]
