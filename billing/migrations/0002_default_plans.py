"""The seed's default plans: free 1+1, pro 5+5 at 29.99, enterprise unlimited (-1) at 99.99."""

from decimal import Decimal

from django.db import migrations

DEFAULT_PLANS = [
    {
        "id": "free",
        "name": "Free",
        "max_personal_agents": 1,
        "max_work_agents": 1,
        "price_monthly": Decimal("0"),
    },
    {
        "id": "pro",
        "name": "Pro",
        "max_personal_agents": 5,
        "max_work_agents": 5,
        "price_monthly": Decimal("29.99"),
    },
    {
        "id": "enterprise",
        "name": "Enterprise",
        "max_personal_agents": -1,
        "max_work_agents": -1,
        "price_monthly": Decimal("99.99"),
    },
]


def insert_default_plans(apps, schema_editor):
    plan_model = apps.get_model("billing", "SubscriptionPlan")
    for plan in DEFAULT_PLANS:
        plan_model.objects.get_or_create(id=plan["id"], defaults=plan)


def delete_default_plans(apps, schema_editor):
    plan_model = apps.get_model("billing", "SubscriptionPlan")
    plan_model.objects.filter(id__in=[plan["id"] for plan in DEFAULT_PLANS]).delete()


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunPython(insert_default_plans, delete_default_plans)]
