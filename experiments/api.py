"""API for experiments and promoted models (datasets: datasets.api). Everyone sees their own; staff see all."""

import os

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action

from config.drf import JSONParser, OwnedViewSet

from .models import Experiment, RegisteredModel
from .serializers import ExperimentSerializer, RegisteredModelSerializer

FILE_RESPONSE = OpenApiResponse(
    OpenApiTypes.BINARY, description="The file, verified against its recorded SHA-256 (in the X-Model-SHA256 header); 409 if it no longer matches."
)


class ExperimentViewSet(OwnedViewSet, viewsets.ModelViewSet):
    """Saved experiments: a name and a run spec, validated like the wizard's, with errors per spec field."""

    queryset = Experiment.objects.all()
    serializer_class = ExperimentSerializer
    parser_classes = [JSONParser]  # a spec is a JSON document; forms could not carry it

    def perform_create(self, serializer):
        serializer.save(owner=self.request.user)


class RegisteredModelViewSet(OwnedViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """Models promoted from completed runs (POST /api/v1/runs/{id}/promote/)."""

    queryset = RegisteredModel.objects.all()
    serializer_class = RegisteredModelSerializer

    @extend_schema(responses={(200, "application/octet-stream"): FILE_RESPONSE}, summary="Download the model bundle")
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        model = self.get_object()
        if not model.file:
            raise Http404("This model has no file.")
        extension = os.path.splitext(model.file.name)[1]
        # Imported here: runs depends on experiments, not the other way round at import time.
        from experiments.downloads import serve_verified

        return serve_verified(request, model.file.name, model.sha256, filename=f"{model.name}{extension}",
                          storage=model.file.storage)
