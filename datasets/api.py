"""API for datasets: upload a CSV, list, inspect, delete. Everyone sees their own; staff see all."""

from django.db import transaction
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, parsers, status
from rest_framework.response import Response

from config.drf import OwnedViewSet

from .models import Dataset
from .serializers import DatasetSerializer, DatasetUploadSerializer


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
