"""Refusals of the notifications domain, each with the code clients see."""

from core.errors import ServiceError


class EndpointInvalid(ServiceError):
    """A field of the request broke a rule: `errors` names it, as for any validation error."""

    code = "validation_error"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}", errors={field: [problem]})


class EndpointLimitReached(ServiceError):
    status_code = 403
    code = "webhook_endpoint_limit_reached"
