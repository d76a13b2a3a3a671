from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView

from experiments.urls import account_urlpatterns

urlpatterns = [
    path("admin/rq/", include("django_rq.urls")),
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/", include("sharing.api_urls")),  # before runs': its catch-all answers 404 for the rest
    path("api/v1/", include("config.api_urls")),
    path("experiments/", include("experiments.urls")),
    path("datasets/", include("datasets.urls")),
    path("", include(account_urlpatterns)),
    path("", include("sharing.urls")),
    path("", include("runs.urls")),
    path("", include("live.urls")),
    path("", include("results.urls")),
    path("models/", include("experiments.registry_urls")),
    # Browsers ask for /favicon.ico whatever the page links; send them to the SVG (looked up lazily, after
    # the static manifest exists).
    path("favicon.ico", RedirectView.as_view(url=lazy(static, str)("favicon.svg"), permanent=True)),
]
