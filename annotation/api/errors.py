from django.core.exceptions import RequestDataTooBig
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from annotation.errors import ServiceError


def exception_handler(exc, context):
    """DRF's handler, plus ServiceError -> its status with `detail`, `code` and `field`,
    and a body over its cap -> 413 naming the field (`file` or `body`)."""
    if isinstance(exc, ServiceError):
        return Response(exc.as_dict(), status=exc.status)
    if isinstance(exc, RequestDataTooBig):
        body = {"detail": str(exc), "code": "too_large", "field": getattr(exc, "field", "body")}
        return Response(body, status=413)
    return drf_exception_handler(exc, context)
