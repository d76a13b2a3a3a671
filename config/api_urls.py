"""/api/v1/: the REST API (DRF router), its OpenAPI schema and docs."""

from csp.decorators import csp_update
from django.http import JsonResponse
from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from datasets.api import DatasetViewSet
from experiments.api import ExperimentViewSet, RegisteredModelViewSet
from results.api import RunResultsViewSet
from runs import api

app_name = "api"

# No ".json" format-suffix twins of every route: nothing uses them, and the @action methods take no `format`
# argument, so each twin (/runs/1/cancel.json ...) answered 500. Unknown paths get the JSON 404 below.
router = DefaultRouter()
router.include_format_suffixes = False
router.register("datasets", DatasetViewSet, basename="dataset")
router.register("experiments", ExperimentViewSet, basename="experiment")
router.register("models", RegisteredModelViewSet, basename="model")
router.register("runs", api.RunViewSet, basename="run")
# Only detail actions (/runs/<id>/results/, diagnostics/, model/, promote/): no list or detail route of its own.
router.register("runs", RunResultsViewSet, basename="run-result")


@csrf_exempt  # or a POST to an unknown path would get the CSRF middleware's HTML 403 instead
def not_found(request, path=""):
    # Django's own 404 page is HTML; API clients get JSON everywhere under /api/v1/.
    return JsonResponse({"detail": "Not found."}, status=404)


urlpatterns = [
    path("auth/token/", api.ObtainToken.as_view(), name="token"),
    # An async view (see its docstring), so it is routed beside the router, not through it.
    path("runs/<int:pk>/wait/", api.wait, name="run-wait"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI styles itself inline; its script is a file (the split view), so only styles are relaxed.
    # GET only: its HTML renderer has no template for DRF's OPTIONS metadata, which answered 500.
    path(
        "docs/",
        csp_update({"style-src": ["'unsafe-inline'"]})(
            SpectacularSwaggerSplitView.as_view(url_name="api:schema", http_method_names=["get", "head"])
        ),
        name="docs",
    ),
    *router.urls,
    re_path(r"^(?P<path>.*)$", not_found),
]
