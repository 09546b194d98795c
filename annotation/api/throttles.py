"""Sign-in throttles: the token endpoint and the login form, per client address and per
username (ANNOTATION_LOGIN_RATE_PER_IP / _PER_USERNAME, read at each request). Only
POSTs count; the counts live in CACHES (set DJANGO_CACHE_REDIS_URL to share them
between web processes)."""

import hashlib

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import HttpResponse
from rest_framework.throttling import SimpleRateThrottle


class _SignInThrottle(SimpleRateThrottle):
    setting = ""

    def get_rate(self):
        return getattr(settings, self.setting)

    def allow_request(self, request, view):
        if request.method != "POST":
            return True
        return super().allow_request(request, view)


class SignInPerIPThrottle(_SignInThrottle):
    scope = "sign-in-ip"
    setting = "ANNOTATION_LOGIN_RATE_PER_IP"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class SignInPerUsernameThrottle(_SignInThrottle):
    scope = "sign-in-user"
    setting = "ANNOTATION_LOGIN_RATE_PER_USERNAME"

    def get_cache_key(self, request, view):
        data = request.data if hasattr(request, "data") else request.POST
        username = data.get("username") if hasattr(data, "get") else None
        if not isinstance(username, str) or not username:
            return None
        digest = hashlib.sha256(username.strip().lower().encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": digest}


SIGN_IN_THROTTLES = [SignInPerIPThrottle, SignInPerUsernameThrottle]


class LoginView(auth_views.LoginView):
    """Django's login form, with the API's sign-in throttles: 429 when either is over."""

    def post(self, request, *args, **kwargs):
        for throttle_class in SIGN_IN_THROTTLES:
            throttle = throttle_class()
            if not throttle.allow_request(request, self):
                response = HttpResponse("Too many sign-in attempts: try again later.", status=429)
                wait = throttle.wait()
                if wait is not None:
                    response["Retry-After"] = str(int(wait) + 1)
                return response
        return super().post(request, *args, **kwargs)
