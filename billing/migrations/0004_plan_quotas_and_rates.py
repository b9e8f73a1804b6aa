"""Give the default plans their quotas, prices and rate limits.

free: 1,000 messages a month, hard-capped. pro: 50,000 included, then 0.002 per message.
enterprise: 1,000,000 included, then 0.001 per message. The unit prices behind
agent_usage.estimated_cost are the same on every plan.
"""

from decimal import Decimal

from django.db import migrations

PLAN_TERMS = {
    "free": {"max_messages_per_month": 1_000, "messages_hard_cap": True,
             "overage_price_per_message": Decimal("0"), "owner_requests_per_minute": 60,
             "app_requests_per_minute": 600},
    "pro": {"max_messages_per_month": 50_000, "messages_hard_cap": False,
            "overage_price_per_message": Decimal("0.002"), "owner_requests_per_minute": 300,
            "app_requests_per_minute": 6_000},
    "enterprise": {"max_messages_per_month": 1_000_000, "messages_hard_cap": False,
                   "overage_price_per_message": Decimal("0.001"),
                   "owner_requests_per_minute": 1_200, "app_requests_per_minute": 60_000},
}
UNIT_PRICES = {"price_per_message": Decimal("0.002"), "price_per_api_call": Decimal("0.0005"),
               "price_per_compute_second": Decimal("0.0001")}


def set_plan_terms(apps, schema_editor):
    plan_model = apps.get_model("billing", "SubscriptionPlan")
    for plan_id, terms in PLAN_TERMS.items():
        plan_model.objects.filter(pk=plan_id).update(**terms, **UNIT_PRICES)


class Migration(migrations.Migration):
    dependencies = [("billing", "0003_usage_and_quotas")]

    operations = [migrations.RunPython(set_plan_terms, migrations.RunPython.noop)]
