"""Routes of the analytics API, included under /api/v1/."""

from django.urls import path

from analytics.api import views

urlpatterns = [
    path(
        "agents/<uuid:agent_id>/analytics/",
        views.AgentAnalyticsView.as_view(),
        name="agent-analytics",
    ),
    path("analytics/summary/", views.AnalyticsSummaryView.as_view(), name="analytics-summary"),
]
