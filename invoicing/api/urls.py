"""Routes of the billing API, included under /api/v1/."""

from django.urls import path

from invoicing.api import views

urlpatterns = [
    path("plans/", views.PlanListView.as_view(), name="plans"),
    path("subscription/", views.SubscriptionView.as_view(), name="subscription"),
    path("billing/checkout/", views.CheckoutView.as_view(), name="billing-checkout"),
    path("billing/portal/", views.PortalView.as_view(), name="billing-portal"),
    path("billing/events/", views.BillingEventListView.as_view(), name="billing-events"),
]
