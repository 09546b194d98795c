"""API authentication (kept apart from the views: DRF imports it while loading its settings)."""

from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's token authentication, with the user read by one plain join: every API call
    pays for it, and the ORM's select_related query costs more to build than to run.
    (drf-spectacular documents subclasses of DRF's class as the same scheme.)"""

    def authenticate_credentials(self, key):
        User = get_user_model()
        users = User.objects.raw(
            f"SELECT account.* FROM {User._meta.db_table} AS account "
            f"JOIN {Token._meta.db_table} AS token ON token.user_id = account.id "
            "WHERE token.key = %s",
            [key],
        )
        user = next(iter(users), None)
        if user is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return user, Token(key=key, user=user)
