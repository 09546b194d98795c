from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.throttles import SIGN_IN_THROTTLES


class TokenView(APIView):
    """POST username/password -> your API token; DELETE revokes it (a new POST makes a new one).
    Sign-in attempts are throttled per client address and per username."""

    throttle_classes = SIGN_IN_THROTTLES

    def get_permissions(self):
        return [AllowAny()] if self.request.method == "POST" else super().get_permissions()

    @extend_schema(
        request=AuthTokenSerializer,
        responses=inline_serializer("TokenOut", {"token": serializers.CharField()}),
    )
    def post(self, request):
        data = AuthTokenSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        token, _ = Token.objects.get_or_create(user=data.validated_data["user"])
        return Response({"token": token.key})

    @extend_schema(request=None, responses={204: None})
    def delete(self, request):
        Token.objects.filter(user=request.user).delete()
        return Response(status=204)


def token_rotate_on_password_change(sender, instance, created: bool, **kwargs) -> None:
    """post_save of the user model: a user whose password was just set (set_password, in
    the admin, `changepassword`) gets a new token; the old one stops working at once.
    (AbstractBaseUser keeps the new raw password in `_password` until save() returns.)"""
    if created or getattr(instance, "_password", None) is None:
        return
    if Token.objects.filter(user=instance).delete()[0]:
        Token.objects.create(user=instance)
