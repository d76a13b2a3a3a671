"""The runs API: submit, list, inspect, stop, re-run, resume and promote runs; the event log as JSON.

Only the owner sees or acts on a run (anyone else gets 404, as if it did not exist); staff see all.
State changes go through runs.control, exactly as the pages do.
"""

import asyncio
import inspect

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.http import HttpResponse
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

from accounts import access
from accounts.quotas import QuotaExceeded
from config import login_throttle
from config.drf import DETAIL, AutoSchema, JSONParser, spec_errors
from engine.spec import SpecError

from . import control, events
from . import resume as resuming
from .models import Run, events_after
from .serializers import (
    EventQuerySerializer,
    EventSerializer,
    LogFilterSerializer,
    LogSerializer,
    MetricFilterSerializer,
    MetricSerializer,
    ProgressSerializer,
    ResumeSerializer,
    RunCreateSerializer,
    RunFilterSerializer,
    RunSerializer,
    StepSerializer,
    TokenSerializer,
    WaitQuerySerializer,
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
        # The login forms' counters (config/login_throttle.py): a locked account or address gets no token
        # either, even with the right password. Failures are counted by authenticate() itself.
        username = request.data.get("username") if isinstance(request.data, dict) else None
        if login_throttle.is_locked_out(request._request, username if isinstance(username, str) else None):
            seconds = login_throttle.retry_after_seconds(request._request, username)
            headers = {"Retry-After": str(seconds)} if seconds else {}
            return Response({"detail": login_throttle.lockout_message(seconds)}, status=429, headers=headers)
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


def quota_refusal(error):
    """409: the request is fine, the user's quota is what stands in the way (accounts.quotas)."""
    return Response({"detail": str(error), "code": "quota_exceeded"}, status=status.HTTP_409_CONFLICT)


class RunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Runs: submit, list and inspect them, stop, re-run and resume them (results.api adds their results). Only the owner (or staff) sees a run."""

    serializer_class = RunSerializer
    schema = AutoSchema()
    parser_classes = [JSONParser]  # a spec is a JSON document; forms could not carry it

    def get_queryset(self):
        return access.visible(self.request.user, Run.objects.select_related("owner"))

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

    @extend_schema(request=RunCreateSerializer, responses={201: RunSerializer, 409: DETAIL["409"]},
                   summary="Submit a run")
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
        except QuotaExceeded as e:
            return quota_refusal(e)
        run.refresh_from_db()  # last_seq moved in the database when the queued event was stored
        return Response(RunSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: RunSerializer, 409: DETAIL["409"]}, summary="Stop the run")
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Queued runs stop at once; running ones become `cancelling` and stop after the current fit."""
        try:
            run = control.cancel_run(self.get_object(), by=request.user)
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
        return Response(events_after(run.pk, params["after"], params["limit"]))

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

    @extend_schema(request=None, responses={201: RunSerializer, 409: DETAIL["409"]},
                   summary="Launch a new run with the same spec")
    @action(detail=True, methods=["post"])
    def rerun(self, request, pk=None):
        try:
            run = control.rerun(self.get_object(), owner=request.user)
        except SpecError as e:  # e.g. its CSV dataset has been deleted since
            raise ValidationError(spec_errors(e.errors)) from None
        except QuotaExceeded as e:
            return quota_refusal(e)
        run.refresh_from_db()
        return Response(RunSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ResumeSerializer, responses={201: RunSerializer, 409: DETAIL["409"]},
                   summary="Resume a stopped or failed run from its finished folds")
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """A new run of the same spec, linked by `resumed_from`, that reuses every finished (branch, variant,
        fold) of this one and fits only the rest, so its leaderboard equals an uninterrupted run's. 409 with the
        reason when that could not be exact: the run is not stopped or failed, not cross-validation, finished no
        fold, its data or scikit-learn changed, or `spec` is not the run's own."""
        body = query_body(ResumeSerializer, request)
        try:
            run = resuming.resume(self.get_object(), owner=request.user, spec=body.get("spec"))
        except resuming.CannotResume as e:
            return Response({"detail": str(e), "code": "cannot_resume"}, status=status.HTTP_409_CONFLICT)
        except QuotaExceeded as e:
            return quota_refusal(e)
        run.refresh_from_db()
        return Response(RunSerializer(run).data, status=status.HTTP_201_CREATED)


# --- wait/ ----------------------------------------------------------------------------------------------


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
    run = access.visible(user, Run.objects.filter(pk=pk)).first()
    if run is None:
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
    RUNWATCH["WAIT_RECHECK_SECONDS"]. Each read is one short query in a thread (sync_to_async); no thread is held while
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
            recheck_at = loop.time() + min(remaining, settings.RUNWATCH["WAIT_RECHECK_SECONDS"])
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
                if any(events.is_terminal_message(m) for m in events.layer_events(message)):
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
