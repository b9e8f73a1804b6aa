"""The support console's admin classes, one module per domain app. Django's admin
autodiscovery imports `console.admin`, which registers them all."""

from console.admin import (
    accounts,  # noqa: F401
    agent_templates,  # noqa: F401
    agents,  # noqa: F401
    audit,  # noqa: F401
    billing,  # noqa: F401
    conversations,  # noqa: F401
    integrations,  # noqa: F401
    jobs,  # noqa: F401
    notifications,  # noqa: F401
    teams,  # noqa: F401
    usage,  # noqa: F401
)
