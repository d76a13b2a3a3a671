"""The results API: a run's leaderboard, a variant's out-of-fold diagnostics, the model download and promotion.

Routed under /api/v1/runs/<id>/ beside runs.api.RunViewSet (config/api_urls.py), with the same access: only the
owner sees a run (anyone else gets 404, as if it did not exist); staff see all.
"""

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from accounts import access
from config.drf import DETAIL, AutoSchema, JSONParser
from experiments.api import FILE_RESPONSE
from experiments.downloads import serve_verified
from experiments.serializers import RegisteredModelSerializer
from runs.api import query, query_body
from runs.models import Run
from runs.serializers import RunSerializer

from . import diagnostics, leaderboard, promotion
from .serializers import (
    DiagnosticsQuerySerializer,
    DiagnosticsSerializer,
    PromoteSerializer,
    ResultsQuerySerializer,
    ResultsSerializer,
)


class RunResultsViewSet(viewsets.GenericViewSet):
    """A run's results. Only detail actions: the runs themselves are listed and shown by runs.api.RunViewSet."""

    serializer_class = RunSerializer
    schema = AutoSchema()
    parser_classes = [JSONParser]

    def get_queryset(self):
        return access.visible(self.request.user, Run.objects.select_related("owner"))

    @extend_schema(parameters=[ResultsQuerySerializer], responses=ResultsSerializer, summary="The leaderboard")
    @action(detail=True, methods=["get"])
    def results(self, request, pk=None):
        run = self.get_object()
        board = leaderboard.leaderboard(run)
        asked = ResultsQuerySerializer(data=request.query_params, context={"metrics": board["metrics"]})
        asked.is_valid(raise_exception=True)
        if asked.validated_data.get("rank_by", board["metric"]) != board["metric"]:
            board = leaderboard.leaderboard(run, board["rows"], rank_by=asked.validated_data["rank_by"])
        return Response(ResultsSerializer(board).data)

    @extend_schema(parameters=[DiagnosticsQuerySerializer], responses={200: DiagnosticsSerializer, "404": DETAIL["404"]},
                   summary="A variant's out-of-fold diagnostics")
    @action(detail=True, methods=["get"])
    def diagnostics(self, request, pk=None):
        """The numbers the results page plots: the best variant's unless `branch` and `variant` name another."""
        run = self.get_object()
        params = query(DiagnosticsQuerySerializer, request)
        if "variant" in params:
            branch, variant = params.get("branch", "default"), params["variant"]
        else:
            board = leaderboard.leaderboard(run)
            row = leaderboard.best_or_first(board)
            if row is None:
                raise Http404("This run has no scored variant yet.")
            branch, variant = row["branch"], row["variant"]
        found = diagnostics.for_variant(run, branch, variant)
        if found is None:
            raise Http404("No diagnostics for this variant.")
        return Response(DiagnosticsSerializer(found).data)

    @extend_schema(responses={(200, "application/octet-stream"): FILE_RESPONSE}, summary="Download the model bundle")
    @action(detail=True, methods=["get"])
    def model(self, request, pk=None):
        run = self.get_object()
        if not run.model_file:
            raise Http404("This run has no model bundle.")
        return serve_verified(request, run.model_file, run.model_sha256)

    @extend_schema(request=PromoteSerializer, responses={201: RegisteredModelSerializer, 409: DETAIL["409"]},
                   summary="Register the run's model under a name")
    @action(detail=True, methods=["post"])
    def promote(self, request, pk=None):
        """Copies a completed run's exported model into the registry (GET /api/v1/models/)."""
        run = self.get_object()
        name = query_body(PromoteSerializer, request)["name"]
        try:
            model = promotion.promote(run, request.user, name)
        except (promotion.CannotPromote, promotion.OverQuota) as e:
            return Response({"detail": str(e)}, status=status.HTTP_409_CONFLICT)
        except promotion.NameTaken as e:
            raise ValidationError({"name": [str(e)]}) from None
        return Response(RegisteredModelSerializer(model).data, status=status.HTTP_201_CREATED)
