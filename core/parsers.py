"""The API's JSON parser: bounded in size (413) and nesting (400), strict about encoding
(not UTF-8, or text holding a lone surrogate such as `"\\ud800"`: 400 malformed_request).

DRF reads request bodies from the raw stream, so Django's DATA_UPLOAD_MAX_MEMORY_SIZE does not
protect API endpoints by itself: the parser reads at most that many bytes.
"""

import json
import re
from typing import Any

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser

from core.api_input import json_problem

# A lone surrogate can only come from a \uD800-\uDFFF escape (strict UTF-8 decoding refuses
# encoded ones), so a body without such an escape needs no walk: the hot path stays fast.
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"
    default_detail = "The request body is too large."


class BoundedJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        try:
            text = body.decode("utf-8")
            value = json.loads(text)
        except UnicodeDecodeError:
            raise ParseError("The request body is not UTF-8.") from None
        except RecursionError:
            # Python's json module recurses per nesting level; a hostile body exhausts it.
            raise ParseError("JSON parse error - nested too deeply.") from None
        except ValueError as error:
            raise ParseError(f"JSON parse error - {error}") from None
        if SURROGATE_ESCAPE.search(text):
            # Escaped pairs (emoji) are fine; a lone half cannot be stored or even encoded.
            problem = json_problem(value)
            if problem:
                raise ParseError(f"JSON parse error - text is not storable: {problem}")
        return value
