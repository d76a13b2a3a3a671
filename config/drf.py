"""The pieces every DRF API module here shares: the JSON parser, the JSON object field, spec errors as field
errors, and the schema class that documents the error answers DRF gives.

It lives in config/ because it belongs to no one app: runs/api.py, experiments/api.py and datasets/api.py build on it.
"""

import io
import math

from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiResponse, extend_schema_field
from rest_framework import parsers, serializers, status, viewsets
from rest_framework.exceptions import APIException, ParseError
from rest_framework.permissions import AllowAny

MAX_JSON_DEPTH = 32
# A spec is a few kilobytes; the largest valid one (50 models, 500 variants, 50 branches) is well under this.
MAX_JSON_BYTES = 1024 * 1024


def json_problem(value):
    """Why `value` cannot be stored in a JSON column, or None. Iterative, so deep nesting cannot crash it.

    PostgreSQL's jsonb refuses NaN/Infinity and NUL characters; letting them through would be a 500.
    """
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"Nested more than {MAX_JSON_DEPTH} levels deep."
        if isinstance(item, float) and not math.isfinite(item):
            return "Numbers must be finite."
        if isinstance(item, str) and "\x00" in item:
            return "Text must not contain NUL characters."
        if isinstance(item, dict):
            for key, child in item.items():
                if "\x00" in key:
                    return "Text must not contain NUL characters."
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return None


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with two limits, each a 4xx instead of a busy or crashed server.

    - A body over MAX_JSON_BYTES is a 413, refused after reading at most that much. The limit is here, not in
      Django's DATA_UPLOAD_MAX_MEMORY_SIZE: DRF reads the request stream itself, which that setting never
      checks (it guards only request.body and form parsing), and the setting is global, while the dataset
      upload needs far more than a JSON document ever does.
    - Absurdly deep nesting is a 400 (the decoder raises RecursionError).
    """

    max_bytes = MAX_JSON_BYTES

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise self.too_large()
        body = stream.read(self.max_bytes + 1)  # a chunked body has no length to trust
        if len(body) > self.max_bytes:
            raise self.too_large()
        try:
            return super().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None

    def too_large(self):
        return RequestTooLarge(f"The request body is over {self.max_bytes // 1024} KB, the limit for JSON here. "
                               "A spec this large cannot be valid; send a smaller one.")


@extend_schema_field({"type": "object", "additionalProperties": True})
class JSONObjectField(serializers.JSONField):
    """A JSON object (not a list or a scalar) that the database can store."""

    default_error_messages = {"not_object": "Must be a JSON object."}

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if not isinstance(data, dict):
            self.fail("not_object")
        problem = json_problem(data)
        if problem:
            raise serializers.ValidationError(problem)
        return data


def spec_errors(errors):
    """engine.spec.SpecError paths as DRF field errors under "spec": {"spec": {"models.0.params.alpha": [..]}}.

    An error about the spec as a whole (path "spec") becomes a plain list, as DRF reports any other field.
    """
    if set(errors) == {"spec"}:
        return {"spec": errors["spec"]}
    return {"spec": {path: list(msgs) for path, msgs in errors.items()}}


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, for a person to read.")


FIELD_ERRORS = OpenApiResponse(
    response={
        "type": "object",
        "description": 'Field errors: {"field": ["message", ...]}; "non_field_errors" for the request as a whole; '
        'spec errors are keyed by dotted path: {"spec": {"models.0.params.alpha": ["..."]}}.',
        "additionalProperties": True,
    },
    description="Invalid input",
)
DETAIL = {code: OpenApiResponse(DetailSerializer, description=text) for code, text in {
    "401": "Not authenticated: send `Authorization: Token <key>` (POST /api/v1/auth/token/) or a session cookie",
    "403": "CSRF check failed (session authentication only)",
    "404": "No such object, or it belongs to someone else",
    "409": "The object's state does not allow this action",
    "413": f"The JSON body is over {MAX_JSON_BYTES // 1024} KB",
    "429": "Too many requests; see the Retry-After header",
}.items()}


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's schema plus the error responses DRF gives, so clients know every status they can get."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        errors = {}
        if self.method in ("POST", "PUT", "PATCH") or self._get_filter_parameters() or self.get_override_parameters():
            errors["400"] = FIELD_ERRORS
        if self.method in ("POST", "PUT", "PATCH") and any(
            issubclass(parser, JSONParser) for parser in getattr(self.view, "parser_classes", ())
        ):
            errors["413"] = DETAIL["413"]
        if not all(isinstance(p, AllowAny) for p in self.view.get_permissions()):
            errors["401"] = DETAIL["401"]
            if self.method not in ("GET", "HEAD", "OPTIONS"):
                errors["403"] = DETAIL["403"]
        if "{" in self.path or self._is_list_view():
            errors["404"] = DETAIL["404"]  # unknown id, someone else's object, or a page past the end
        for code, response in errors.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(response.response, code, direction=direction)
                responses[code]["description"] = response.description
        return responses


class OwnedViewSet(viewsets.GenericViewSet):
    """Objects of the requesting user; staff see everyone's. Anyone else's object is a 404, never a 403."""

    schema = AutoSchema()

    def get_queryset(self):
        return super().get_queryset().visible_to(self.request.user).select_related("owner")
