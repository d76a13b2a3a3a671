"""API for datasets, experiments and promoted models. Everyone sees their own; staff see all."""

import os

from django.db import transaction
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, parsers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from config.drf import AutoSchema, JSONParser

from .models import Dataset, Experiment, RegisteredModel
from .serializers import (
    DatasetSerializer,
    DatasetUploadSerializer,
    ExperimentSerializer,
    RegisteredModelSerializer,
)

FILE_RESPONSE = OpenApiResponse(
    OpenApiTypes.BINARY, description="The file, verified against its recorded SHA-256 (in the X-Model-SHA256 header); 409 if it no longer matches."
)


class OwnedViewSet(viewsets.GenericViewSet):
    """Objects of the requesting user; staff see everyone's. Anyone else's object is a 404, never a 403."""

    schema = AutoSchema()

    def get_queryset(self):
        return super().get_queryset().visible_to(self.request.user).select_related("owner")


@extend_schema_view(
    create=extend_schema(request=DatasetUploadSerializer, responses={201: DatasetSerializer},
                         summary="Upload a CSV dataset (multipart/form-data)"),
)
class DatasetViewSet(OwnedViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                     mixins.DestroyModelMixin):
    """Datasets you can use in a spec: upload a CSV, list, inspect, delete."""

    queryset = Dataset.objects.all()
    serializer_class = DatasetSerializer
    parser_classes = [parsers.MultiPartParser]

    def create(self, request, *args, **kwargs):
        upload = DatasetUploadSerializer(data=request.data, context={"request": request})
        upload.is_valid(raise_exception=True)
        dataset = upload.save(owner=request.user)
        return Response(DatasetSerializer(dataset).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, dataset):
        stored = dataset.file.name
        dataset.delete()
        if stored:
            # Only once the row is really gone; a rolled-back delete must keep its file.
            transaction.on_commit(lambda: dataset.file.storage.delete(stored))


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
