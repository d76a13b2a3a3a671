"""/api/v1/shares/: make, list and revoke share links of one's own runs, or of a comparison of them (staff:
anyone's), as runs/api.py does runs. A link's token is in the answer to its creation only; afterwards nobody
can read it back."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts import access
from config.drf import AutoSchema, JSONParser
from results import compare
from runs.models import Run

from .forms import check_expiry
from .models import STATUSES, ShareLink


class ShareLinkSerializer(serializers.ModelSerializer):
    status = serializers.ChoiceField(choices=STATUSES, read_only=True,
                                     help_text="active until revoked or past its expiry")
    kind = serializers.SerializerMethodField(help_text="run: one run's pages; comparison: the compare page of runs")
    runs = serializers.SerializerMethodField(help_text="The runs it shows, in the compared order (a run link: one)")

    class Meta:
        model = ShareLink
        fields = ["id", "kind", "run", "runs", "created", "expires_at", "last_used_at", "revoked_at", "status"]
        read_only_fields = fields

    def get_kind(self, link) -> str:
        return "comparison" if link.is_comparison else "run"

    def get_runs(self, link) -> list[int]:
        return link.run_ids()


class ShareLinkCreateSerializer(serializers.Serializer):
    run = serializers.PrimaryKeyRelatedField(queryset=Run.objects.none(), required=False,
                                             help_text="One of your runs (or give runs).")
    runs = serializers.ListField(child=serializers.PrimaryKeyRelatedField(queryset=Run.objects.none()),
                                 required=False, min_length=compare.MIN_RUNS, max_length=compare.MAX_RUNS,
                                 help_text="2 to 4 of your runs, to share their comparison in this order.")
    expires_at = serializers.DateTimeField(required=False, allow_null=True,
                                           help_text="When the link stops working; empty: until revoked.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Someone else's run is "does not exist", as a missing one: ids cannot be probed. (No request: the
        # schema generator, which needs only the field.)
        request = self.context.get("request")
        if request is not None:
            self.fields["run"].queryset = access.visible(request.user, Run.objects.all())
            self.fields["runs"].child.queryset = access.visible(request.user, Run.objects.all())

    def validate_runs(self, runs):
        if len({run.pk for run in runs}) != len(runs):
            raise serializers.ValidationError("Each run may be compared once.")
        return runs

    def validate(self, data):
        if ("run" in data) == ("runs" in data):
            raise serializers.ValidationError({"run": ["Give either run (share a run) or runs (a comparison)."]})
        return data

    def validate_expires_at(self, value):
        try:
            return check_expiry(value)
        except Exception as e:  # Django's ValidationError: the same message as the form
            raise serializers.ValidationError(e.messages) from None


class CreatedShareLinkSerializer(ShareLinkSerializer):
    token = serializers.CharField(read_only=True, help_text="Shown this once; only its hash is stored.")
    url = serializers.CharField(read_only=True,
                                help_text="The read-only run page (or compare page) for anyone with the link.")

    class Meta(ShareLinkSerializer.Meta):
        fields = ShareLinkSerializer.Meta.fields + ["token", "url"]
        read_only_fields = fields


class ShareLinkViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Share links of the runs you may act on (a comparison: when you may act on every one of its runs).
    Anyone else's answers 404."""

    serializer_class = ShareLinkSerializer
    schema = AutoSchema()
    parser_classes = [JSONParser]

    def get_queryset(self):
        runs = access.visible(self.request.user, Run.objects.all())
        return ShareLink.objects.of_runs(runs).prefetch_related("compared_runs").order_by("-created")

    @extend_schema(request=ShareLinkCreateSerializer, responses={201: CreatedShareLinkSerializer},
                   summary="Share a run, or a comparison of runs, read-only")
    def create(self, request):
        serializer = ShareLinkCreateSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "runs" in data:
            link, token = ShareLink.create_for_comparison(data["runs"], request.user, data.get("expires_at"))
        else:
            link, token = ShareLink.create_for(data["run"], request.user, data.get("expires_at"))
        link.token, link.url = token, request.build_absolute_uri(link.path(token))
        return Response(CreatedShareLinkSerializer(link).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=ShareLinkSerializer, summary="Revoke a share link")
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        link = self.get_object()
        link.revoke()
        return Response(ShareLinkSerializer(link).data)
