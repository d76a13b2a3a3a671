"""The runs API: submit, list, inspect, stop, re-run and promote runs; the event log as JSON.

Only the owner sees or acts on a run (anyone else gets 404, as if it did not exist); staff see all.
State changes go through runs.control, exactly as the pages do.
"""

import asyncio
import hashlib
import inspect
import os
import statistics

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.files import File
from django.db import IntegrityError, transaction
from django.http import Http404, HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from experiments import catalog
from experiments.api import FILE_RESPONSE, file_response
from experiments.models import RegisteredModel
from experiments.serializers import RegisteredModelSerializer
from experiments.spec import SpecError

from . import control, events
from .models import FoldMetric, Run
from .serializers import (
    DETAIL, AutoSchema, EventQuerySerializer, JSONParser, EventSerializer, LogFilterSerializer, LogSerializer,
    MetricFilterSerializer, MetricSerializer, ProgressSerializer, PromoteSerializer, ResultsSerializer,
    RunCreateSerializer, RunFilterSerializer, RunSerializer, StepSerializer, TokenSerializer, WaitQuerySerializer,
    spec_errors,
)


class ObtainToken(ObtainAuthToken):
    """Exchange a username and password for the user's API token (the same token every time)."""

    # The credentials are in the body. Without this a logged-in browser would also need a CSRF token.
    authentication_classes = ()
    parser_classes = [JSONParser, FormParser, MultiPartParser]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "token"  # REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["token"]
    schema = AutoSchema()

    @extend_schema(responses={200: TokenSerializer, "429": DETAIL["429"]}, tags=["auth"])
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


def query(serializer_class, request):
    """Validated query parameters, or a 400 with field errors."""
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def query_body(serializer_class, request):
    """Validated body fields, or a 400 with field errors."""
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def model_path(run):
    """The run's bundle on disk (model_file is relative to MEDIA_ROOT), or None."""
    if not run.model_file:
        return None
    path = os.path.join(settings.MEDIA_ROOT, run.model_file)
    return path if os.path.isfile(path) else None


class RunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Runs: submit, list and inspect them, stop, re-run and promote them. Only the owner (or staff) sees a run."""

    serializer_class = RunSerializer
    schema = AutoSchema()
    parser_classes = [JSONParser]  # a spec is a JSON document; forms could not carry it

    def get_queryset(self):
        runs = Run.objects.select_related("owner")
        return runs if self.request.user.is_staff else runs.filter(owner_id=self.request.user.pk)

    def filter_queryset(self, runs):
        if self.action != "list":
            return runs
        filters = query(RunFilterSerializer, self.request)
        if "status" in filters:
            runs = runs.filter(status=filters["status"])
        if "experiment" in filters:
            runs = runs.filter(experiment_id=filters["experiment"])
        if "created_after" in filters:
            runs = runs.filter(queued_at__gte=filters["created_after"])
        if "created_before" in filters:
            runs = runs.filter(queued_at__lt=filters["created_before"])
        return runs

    @extend_schema(parameters=[RunFilterSerializer], summary="List runs, newest first")
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=RunCreateSerializer, responses={201: RunSerializer}, summary="Submit a run")
    def create(self, request):
        serializer = RunCreateSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            run = control.launch_run(
                request.user, experiment=data.get("experiment"), spec=data.get("spec"), name=data.get("name") or None
            )
        except SpecError as e:
            raise ValidationError(spec_errors(e.errors)) from None
        run.refresh_from_db()  # last_seq moved in the database when the queued event was stored
        return Response(RunSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: RunSerializer, 409: DETAIL["409"]}, summary="Stop the run")
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Queued runs stop at once; running ones become `cancelling` and stop after the current fit."""
        try:
            run = control.cancel_run(self.get_object())
        except control.CannotCancel as e:
            return Response({"detail": str(e)}, status=status.HTTP_409_CONFLICT)
        return Response(RunSerializer(run).data)

    @extend_schema(parameters=[EventQuerySerializer], responses=EventSerializer(many=True),
                   summary="The event log, in sequence order")
    @action(detail=True, methods=["get"], pagination_class=None)
    def events(self, request, pk=None):
        """Stored events with seq > `after`, at most `limit`; the same messages as the WebSocket JSON stream.

        Poll with `after` set to the last seq you hold; fewer than `limit` events means you are up to date.
        """
        run = self.get_object()
        params = query(EventQuerySerializer, request)
        return Response(events.events_after(run.pk, params["after"], params["limit"]))

    @extend_schema(responses=ProgressSerializer, summary="The run's progress record")
    @action(detail=True, methods=["get"])
    def progress(self, request, pk=None):
        return Response(ProgressSerializer(self.get_object().progress_record()).data)

    @extend_schema(responses=StepSerializer(many=True), summary="The runner's steps and their status")
    @action(detail=True, methods=["get"], pagination_class=None)
    def steps(self, request, pk=None):
        return Response(StepSerializer(self.get_object().steps.all(), many=True).data)

    @extend_schema(parameters=[MetricFilterSerializer], responses=MetricSerializer(many=True),
                   summary="Per-fold (or per-epoch) scores")
    @action(detail=True, methods=["get"])
    def metrics(self, request, pk=None):
        rows = self.get_object().fold_metrics.filter(**query(MetricFilterSerializer, request)).order_by("seq", "id")
        return self.get_paginated_response(MetricSerializer(self.paginate_queryset(rows), many=True).data)

    @extend_schema(parameters=[LogFilterSerializer], responses=LogSerializer(many=True), summary="Log lines")
    @action(detail=True, methods=["get"])
    def logs(self, request, pk=None):
        """Log lines in order, filtered by level and by context (step, fold, branch, variant)."""
        rows = self.get_object().logs.filter(**query(LogFilterSerializer, request)).order_by("seq")
        return self.get_paginated_response(LogSerializer(self.paginate_queryset(rows), many=True).data)

    @extend_schema(responses=ResultsSerializer, summary="The leaderboard")
    @action(detail=True, methods=["get"])
    def results(self, request, pk=None):
        return Response(ResultsSerializer(leaderboard(self.get_object())).data)

    @extend_schema(responses={(200, "application/octet-stream"): FILE_RESPONSE}, summary="Download the model bundle")
    @action(detail=True, methods=["get"])
    def model(self, request, pk=None):
        run = self.get_object()
        path = model_path(run)
        if path is None:
            raise Http404("This run has no model bundle.")
        return file_response(path, run.model_sha256)

    @extend_schema(request=None, responses={201: RunSerializer}, summary="Launch a new run with the same spec")
    @action(detail=True, methods=["post"])
    def rerun(self, request, pk=None):
        try:
            run = control.rerun(self.get_object(), owner=request.user)
        except SpecError as e:  # e.g. its CSV dataset has been deleted since
            raise ValidationError(spec_errors(e.errors)) from None
        run.refresh_from_db()
        return Response(RunSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=PromoteSerializer, responses={201: RegisteredModelSerializer, 409: DETAIL["409"]},
                   summary="Register the run's model under a name")
    @action(detail=True, methods=["post"])
    def promote(self, request, pk=None):
        """Copies a completed run's exported model into the registry (GET /api/v1/models/)."""
        run = self.get_object()
        name = query_body(PromoteSerializer, request)["name"]
        path = model_path(run) if run.status == Run.Status.COMPLETED else None
        if path is None:
            return Response({"detail": "Only a completed run with an exported model can be promoted."},
                            status=status.HTTP_409_CONFLICT)
        if RegisteredModel.objects.filter(owner=request.user, name=name).exists():
            raise ValidationError({"name": ["You already have a model with this name."]})
        model = RegisteredModel(owner=request.user, name=name, run=run, metric=run.metric, score=run.best_score)
        with open(path, "rb") as f:
            model.sha256 = hashlib.file_digest(f, "sha256").hexdigest()
            f.seek(0)
            model.size_bytes = os.fstat(f.fileno()).st_size
            model.file.save(os.path.basename(path), File(f), save=False)
        try:
            with transaction.atomic():
                model.save()
        except IntegrityError:  # the same name, promoted at the same moment
            model.file.delete(save=False)
            raise ValidationError({"name": ["You already have a model with this name."]}) from None
        return Response(RegisteredModelSerializer(model).data, status=status.HTTP_201_CREATED)


def leaderboard(run):
    """Per branch and variant: mean and std of each metric over folds, best first by the primary metric.

    The std is the population one (ddof=0), as scikit-learn's search CV reports. Training runs record
    scores per epoch, not per fold: there each variant's row is its last epoch (std is null).
    """
    primary = run.metric
    greater = catalog.METRICS.get(run.task, {}).get(primary, (True, False))[0]
    groups = {}
    for m in FoldMetric.objects.filter(run=run).order_by("seq", "id"):
        g = groups.setdefault((m.branch, m.variant), {"description": m.variant_description, "values": {}, "fits": {}})
        unit = m.fold if m.fold is not None else ("epoch", m.epoch)
        g["values"].setdefault(m.metric, {})[unit] = m.value
        g["fits"][unit] = m.fit_time
    known = list(catalog.METRICS.get(run.task, {}))
    seen = {name for g in groups.values() for name in g["values"]}
    metrics = [n for n in known if n in seen] + sorted(seen - set(known))

    rows = []
    for (branch, variant), g in groups.items():
        scores = {name: summarize(by_unit) for name, by_unit in g["values"].items()}
        rows.append({
            "branch": branch,
            "variant": variant,
            "description": g["description"],
            "folds": len(g["fits"]),
            "fit_time": statistics.fmean(g["fits"].values()) if g["fits"] else 0.0,
            "primary": scores.get(primary, {"mean": None, "std": None, "count": 0}),
            "scores": scores,
        })

    def order(row):
        mean = row["primary"]["mean"]
        return (mean is None, 0 if mean is None else (-mean if greater else mean), row["branch"], row["variant"])

    rows.sort(key=order)
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    return {"run": run.pk, "status": run.status, "metric": primary, "greater_is_better": greater,
            "metrics": metrics, "leaderboard": rows}


def summarize(by_unit):
    if any(isinstance(unit, tuple) for unit in by_unit):  # epochs: the last one counts
        last = max(by_unit, key=lambda unit: unit[1] or 0)
        value = by_unit[last]
        return {"mean": value, "std": None, "count": len(by_unit)}
    values = [v for v in by_unit.values() if v is not None and v == v]  # v == v drops NaN
    if not values:
        return {"mean": None, "std": None, "count": 0}
    return {"mean": statistics.fmean(values), "std": statistics.pstdev(values), "count": len(values)}


# --- wait/ ----------------------------------------------------------------------------------------------

# While waiting, the run is re-read this often even if no event arrives: layer delivery is at-most-once.
WAIT_RECHECK_SECONDS = 2.0


def json_response(data, status=200, **headers):
    return HttpResponse(JSONRenderer().render(data), status=status, content_type="application/json", headers=headers)


def _authorize(request, pk):
    """(run, None) or (None, error response). DRF's own authenticators, so token and session both work."""
    drf_request = Request(request, authenticators=[auth() for auth in api_settings.DEFAULT_AUTHENTICATION_CLASSES])
    try:
        user = drf_request.user
    except APIException as e:
        return None, json_response({"detail": str(e.detail)}, 401, **{"WWW-Authenticate": "Token"})
    if not user.is_authenticated:
        return None, json_response(
            {"detail": "Authentication credentials were not provided."}, 401, **{"WWW-Authenticate": "Token"}
        )
    run = Run.objects.filter(pk=pk).first()
    if run is None or not run.visible_to(user):
        return None, json_response({"detail": "No Run matches the given query."}, 404)
    return run, None


def _state(pk):
    run = Run.objects.select_related("owner").filter(pk=pk).first()
    return (True, None) if run is None else (run.is_terminal, run)


async def wait(request, pk):
    """GET /api/v1/runs/{id}/wait/?timeout=<s>: block until the run is terminal or `timeout` passes.

    Why it is safe to block here: this is an async view, so under daphne a waiting request is a coroutine on
    the event loop, not a thread. It subscribes to the run's channel-layer group (`run-<id>`), then reads
    the run: a terminal event published from then on wakes it at once, and one published before is already
    in the database. Delivery over the layer is at-most-once, so it also re-reads the run every
    WAIT_RECHECK_SECONDS. Each read is one short query in a thread (sync_to_async); no thread is held while
    waiting. The timeout is capped at 60 s so proxies do not cut the request; call again to wait longer.

    DRF views cannot be async, so this is a plain Django view that runs DRF's authenticators itself;
    RunWaitView below only describes it in the OpenAPI schema.
    """
    if request.method != "GET":
        return json_response({"detail": f'Method "{request.method}" not allowed.'}, 405, Allow="GET")
    run, error = await sync_to_async(_authorize)(request, pk)
    if error:
        return error
    params = WaitQuerySerializer(data=request.GET)
    if not params.is_valid():
        return json_response(params.errors, 400)

    loop = asyncio.get_running_loop()
    deadline = loop.time() + params.validated_data["timeout"]
    layer, channel, receiver = get_channel_layer(), None, None
    try:
        try:
            channel = await layer.new_channel()
            await layer.group_add(events.group_name(pk), channel)
        except Exception:  # Redis is down: the periodic re-read still ends the wait.
            channel = None
        while True:
            terminal, run = await sync_to_async(_state)(pk)
            if run is None:
                return json_response({"detail": "No Run matches the given query."}, 404)
            remaining = deadline - loop.time()
            if terminal or remaining <= 0:
                break
            recheck_at = loop.time() + min(remaining, WAIT_RECHECK_SECONDS)
            while (left := recheck_at - loop.time()) > 0:
                if channel is None:
                    await asyncio.sleep(left)
                    break
                # One receive task lives across timeouts: cancelling it would unsubscribe the channel.
                receiver = receiver or asyncio.ensure_future(layer.receive(channel))
                done, _ = await asyncio.wait({receiver}, timeout=left)
                if not done:
                    break
                try:
                    message = receiver.result()
                except Exception:  # the layer's connection broke: fall back to re-reading only
                    channel = receiver = None
                    break
                receiver = None
                if events.is_terminal_message(message.get("event") or {"type": ""}):
                    break
    finally:
        if receiver is not None:
            receiver.cancel()
        if channel is not None:
            try:
                await layer.group_discard(events.group_name(pk), channel)
            except Exception:
                pass
    data = await sync_to_async(lambda: RunSerializer(run).data)()
    return json_response(data)


class RunWaitView(APIView):
    """Describes `wait` in the schema; requests are served by the async view itself (see api_urls)."""

    schema = AutoSchema()

    @extend_schema(parameters=[WaitQuerySerializer], responses=RunSerializer, tags=["runs"],
                   operation_id="runs_wait_retrieve", summary="Wait for the run to end",
                   description=inspect.cleandoc(wait.__doc__).split("\n\n", 1)[1])
    def get(self, request, pk):  # pragma: no cover - never routed
        raise NotImplementedError


wait.cls = RunWaitView  # how DRF's and drf-spectacular's endpoint enumerators recognise an API view
wait.initkwargs = {}
