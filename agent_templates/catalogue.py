"""The templates a new install's marketplace starts with (`manage.py seed_templates`).

They belong to CATALOGUE_OWNER_ID, an owner id no Stack Auth user has, and are public and
approved. Their content has exactly a version snapshot's keys (`agent_templates.snapshot`).
"""

from typing import Any

CATALOGUE_OWNER_ID = "a1zap_catalogue"

CATALOGUE: list[dict[str, Any]] = [
    {
        "slug": "customer_support",
        "name": "Customer support desk",
        "description": "Answers customers' questions from your FAQ, collects order numbers "
        "and hands over to a person when it cannot help.",
        "category": "support",
        "tags": ["faq", "helpdesk"],
        "changelog": "First version.",
        "content": {
            "description": "I answer questions about your orders, shipping and returns.",
            "avatar_url": None,
            "onboarding_data": {
                "questions": [
                    "What is your order number?",
                    "What can I help you with today?",
                ]
            },
            "settings": {"tone": "friendly", "languages": ["en"], "handover_after": 6},
            "agent_type": "work",
            "integrations": ["email", "slack"],
        },
    },
    {
        "slug": "sales_assistant",
        "name": "Sales assistant",
        "description": "Qualifies leads on WhatsApp: asks about need, budget and timing, "
        "and books a call with your team.",
        "category": "sales",
        "tags": ["crm", "leads"],
        "changelog": "First version.",
        "content": {
            "description": "I help you find the right plan and book a call with our team.",
            "avatar_url": None,
            "onboarding_data": {
                "questions": [
                    "What are you looking for?",
                    "What budget do you have in mind?",
                    "When would you like to start?",
                ]
            },
            "settings": {"tone": "professional", "languages": ["en"]},
            "agent_type": "work",
            "integrations": ["whatsapp"],
        },
    },
    {
        "slug": "appointment_booking",
        "name": "Appointment booking",
        "description": "Books, moves and cancels appointments, and reminds people the day before.",
        "category": "productivity",
        "tags": ["reminders", "scheduling"],
        "changelog": "First version.",
        "content": {
            "description": "I book, move and cancel your appointments.",
            "avatar_url": None,
            "onboarding_data": {
                "questions": ["Which service would you like?", "Which day suits you?"]
            },
            "settings": {"tone": "friendly", "reminder_hours_before": 24},
            "agent_type": "work",
            "integrations": ["telegram", "whatsapp"],
        },
    },
    {
        "slug": "study_buddy",
        "name": "Study buddy",
        "description": "A personal tutor that quizzes you on a subject and explains what "
        "you got wrong.",
        "category": "education",
        "tags": ["quiz", "tutor"],
        "changelog": "First version.",
        "content": {
            "description": "I quiz you and explain the answers.",
            "avatar_url": None,
            "onboarding_data": {"questions": ["What are you studying?", "What is your level?"]},
            "settings": {"tone": "encouraging", "quiz_length": 5},
            "agent_type": "personal",
            "integrations": ["telegram"],
        },
    },
]
