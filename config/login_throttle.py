"""The login throttle: django-axes, one set of counters for /login/, /admin/login/ and the API token.

Why axes rather than django-ratelimit: axes counts *failed logins* (not requests), per account and per client
address, keeps them in the database where staff see and lift lock-outs in the admin (Axes > Access attempts;
deleting a row lifts it, and `manage.py axes_reset` lifts them all), and hooks into Django's own
authenticate(), so every way of logging in shares the counters without each view counting for itself.
"""

import math

from axes.backends import AxesStandaloneBackend
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off
from axes.models import AccessAttempt
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.db.models import Max, Q
from django.http import JsonResponse
from django.shortcuts import render
from django.utils import timezone

from .client_ip import request_ip


class LoginThrottleBackend(AxesStandaloneBackend):
    """Axes' check, for logins that come with a request (every form and the API). authenticate() without one
    is an in-process call (a management command, the test client's login()) that no outsider can reach."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def retry_after_seconds(request, username):
    """Seconds until the lock-out that covers this account or this address ends (at the latest).

    A lock-out lasts the cool-off after the last failure counted against it (a failure during a lock-out
    restarts it), so the answer is measured from the newest attempt of either kind."""
    cool_off = get_cool_off(request)
    if cool_off is None:
        return None
    match = Q(ip_address=request_ip(request))
    if username:
        match |= Q(username=username)
    last = AccessAttempt.objects.filter(match).aggregate(last=Max("attempt_time"))["last"]
    if last is None:
        return math.ceil(cool_off.total_seconds())
    return max(1, math.ceil((last + cool_off - timezone.now()).total_seconds()))


def lockout_message(seconds):
    if seconds is None:
        return "Too many failed logins for this account or from this address. Ask an administrator to unlock it."
    minutes = math.ceil(seconds / 60)
    when = f"{minutes} minute{'s' if minutes != 1 else ''}" if seconds >= 60 else f"{seconds} seconds"
    return f"Too many failed logins for this account or from this address. Try again in {when}."


def is_locked_out(request, username):
    return not AxesProxyHandler.is_allowed(request, {"username": username})


def lockout_response(request, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: the login page again, with the throttle's message, as 429 with Retry-After.

    (axes' async middleware passes its arguments in another order, so credentials are read from the request.)"""
    credentials = getattr(request, "axes_credentials", None) or {}
    username = credentials.get("username") or request.POST.get("username", "")
    seconds = retry_after_seconds(request, username)
    message = lockout_message(seconds)
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": message}, status=429)
    else:
        response = render(request, *login_page(request, username, message), status=429)
    if seconds is not None:
        response["Retry-After"] = str(seconds)
    return response


def login_page(request, username, message):
    """(template, context) of the login form the request came from, showing `message` as its error."""
    admin_login = request.path.startswith("/admin/")
    form_class = AdminAuthenticationForm if admin_login else AuthenticationForm
    form = form_class(request, data={"username": username})
    form.errors.clear()
    form.add_error(None, message)
    if admin_login:
        context = {**admin.site.each_context(request), "form": form, "title": "Log in", "username": username,
                   "app_path": request.get_full_path()}
        return "admin/login.html", context
    return "registration/login.html", {"form": form, "throttled": message, "next": request.POST.get("next", "")}
