"""Refusals of the integrations domain, each with the code clients see."""

from core.errors import ServiceError


class IntegrationInvalid(ServiceError):
    """Fields of the request broke a rule: `errors` names them, as for any validation error."""

    code = "validation_error"

    def __init__(self, errors: dict[str, object]) -> None:
        field, problem = next(iter(errors.items()))
        message = problem
        if isinstance(problem, dict):
            key, messages = next(iter(problem.items()))
            message = f"{key}: {messages[0]}"
        elif isinstance(problem, list):
            message = problem[0]
        super().__init__(f"{field}: {message}", errors=errors)
