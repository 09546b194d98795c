from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from annotation.errors import ServiceError


def exception_handler(exc, context):
    """DRF's handler, plus ServiceError -> its status with `detail`, `code` and `field`."""
    if isinstance(exc, ServiceError):
        return Response(exc.as_dict(), status=exc.status)
    return drf_exception_handler(exc, context)
