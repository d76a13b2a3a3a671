"""Sign-up, when the site allows it, and password change through Django's own auth views."""

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import UserCreationForm
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse_lazy


def signup_enabled():
    return settings.RUNWATCH.get("SIGNUP_ENABLED", False)


def signup(request):
    if not signup_enabled():
        raise Http404("Sign-up is switched off on this server.")
    if request.user.is_authenticated:
        return redirect("experiments:list")
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("datasets:list")
    return render(request, "registration/signup.html", {"form": form}, status=400 if form.errors else 200)


class PasswordChange(auth_views.PasswordChangeView):
    success_url = reverse_lazy("password_change_done")


class PasswordChangeDone(auth_views.PasswordChangeDoneView):
    pass
