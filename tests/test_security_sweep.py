"""Every route in the URL configuration, tried as anonymous and as an outsider with every method: each refuses.

The routes come from the URL resolver itself (tests/routes.py), so a new page, API action, admin screen or
download is swept the day it is added. Its parameters are filled with the ids of the owner's objects from
PARAMS below; a route with a parameter PARAMS does not know fails the sweep with a message saying so, so
whoever adds it decides whose object it takes. The owner opens every route first, which proves the ids
reach real objects (a sweep of 404s for ids that do not exist would prove nothing).

Refusing means a redirect to a login page, 401, 403, 404 or 405: for anonymous on every route but PUBLIC's,
for an outsider on every route that names an object or belongs to the admin. A route without parameters
outside the admin (the runs list, the upload form) shows the outsider their own things: it may answer, but
never with the owner's data, even when the query string or the body names the owner's ids. Nobody gets a 5xx,
and afterwards every row and file of the owner's is byte-for-byte what it was, and the outsider owns nothing
made from them. The WebSocket routes of config/asgi.py are swept the same way against a real daphne.
"""

import json

import pytest
from django.conf import settings
from django.test import Client
from django.urls import Resolver404, resolve
from rest_framework.authtoken.models import Token
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.helpers import session_key_for
from tests.routes import UnknownParameter, concrete_url, http_routes, parameters, websocket_routes
from tests.security_world import MARK, build_world, changes, leaked, snapshot

pytestmark = pytest.mark.django_db

GUESSED_TOKEN = "x" * 43  # the shape of secrets.token_urlsafe(32), the value of none

METHODS = ("get", "head", "options", "post", "put", "patch", "delete")

# Path parameter → the owner's object whose pk fills it. Where a name means different things on different
# routes (DRF's `pk`, the admin's `object_id`), a dict maps the route's leading text to the object.
# A new parameter, or a new model in the admin, must be added here: decide whose object the route takes.
PARAMS = {
    "run_id": "run",
    "experiment_id": "experiment",
    "dataset_id": "dataset",
    "model_id": "model",
    "link_id": "share_link",
    "pk": {
        "api/v1/shares": "share_link",
        "api/v1/runs": "run", "api/v1/experiments": "experiment", "api/v1/datasets": "dataset",
        "api/v1/models": "model",
    },
    "object_id": {
        "admin/runs/run/": "run", "admin/runs/runstep/": "step", "admin/runs/foldmetric/": "fold",
        "admin/runs/logentry/": "log", "admin/runs/runevent/": "event",
        "admin/experiments/experiment/": "experiment", "admin/datasets/dataset/": "dataset",
        "admin/experiments/registeredmodel/": "model", "admin/auth/user/": "owner", "admin/auth/group/": "group",
        "admin/authtoken/tokenproxy/": "owner",  # the proxy's pk is its user's
        "admin/axes/accessattempt/": "access_attempt", "admin/axes/accesslog/": "access_log",
        "admin/axes/accessfailurelog/": "access_failure",
        "admin/sharing/sharelink/": "share_link",
        "admin/r/": "run",  # view_on_site
    },
    "content_type_id": {"admin/r/": "run_content_type"},
    "id": {"admin/auth/user/": "owner"},  # the admin's password form
    # Not objects: literal values that select the route.
    "format": "=json",  # DRF's format suffixes (off in config/api_urls.py; here should they come back)
    "app_label": "=runs",
    "url": "=runs/run/nothing-here",  # the admin's catch-all (any path no admin screen has)
    "path": "=nothing-here/",  # the API's JSON 404 catch-all
    # django-rq's screens (staff only): queue 0, the run's RQ job id, and made-up names for the rest.
    "queue_index": "=0", "scheduler_index": "=0", "connection_index": "=0",
    "job_id": "rq_job_id", "result_id": "=r1", "key": "=w1", "scheduler_name": "=s1", "cron_job_name": "=c1",
    # A share link's token is a bearer secret: anyone holding the owner's would be served by design
    # (tests/test_sharing.py), so the sweep tries a guessed one, which everybody must be refused.
    "token": {"admin/rq/": "=t1", "s/": f"={GUESSED_TOKEN}", "ws/share/": f"={GUESSED_TOKEN}"},
}

# Routes anybody may open, each with why. They are still swept: no owner's data, no 5xx, no state change.
PUBLIC = {
    "login/": "the login form",
    "logout/": "logging out (a POST; an anonymous one just lands on the login page)",
    "signup/": "self sign-up (off unless RUNWATCH_SIGNUP is set; then a 404)",
    "favicon.ico": "a redirect to the static icon",
    "admin/login/": "the admin's login form",
    "admin/logout/": "the admin's logout",
    "api/v1/auth/token/": "exchanging a username and password for an API token",
    "api/v1/schema/": "the OpenAPI description: the API's shape, no data",
    "api/v1/docs/": "Swagger UI over that schema",
    "api/v1/(?P<path>.*)": "the API's JSON 404 for unknown paths",
}

# Routes that 404 for the owner too, by design, so the owner's check does not apply.
CATCH_ALLS = {"api/v1/(?P<path>.*)"}
# The share links' bearer routes, swept with a guessed token (PARAMS): the owner is refused it too.
BEARER = {"s/<str:token>/", "s/<str:token>/results/", "s/<str:token>/live/", "ws/share/<str:token>/",
          "ws/share/<str:token>/fragments/"}
CATCH_ALLS |= BEARER

LOGIN_URLS = ("/login/", "/admin/login/")


def lookup(world):
    def value_for(route, name):
        entry = PARAMS.get(name)
        if isinstance(entry, dict):
            key = next((k for k in sorted(entry, key=len, reverse=True) if route.route.startswith(k)), None)
            entry = entry[key] if key is not None else None
        if entry is None:
            raise UnknownParameter(
                f"The route {route.route!r} has a parameter {name!r} that tests/test_security_sweep.py PARAMS "
                f"does not know. Add which of the owner's objects it takes, so the sweep can try it as an "
                f"outsider.")
        if entry.startswith("="):
            return entry[1:]
        if entry == "rq_job_id":
            return world.run.rq_job_id
        return getattr(world, entry).pk

    return value_for


@pytest.fixture
def world(owner, settings, tmp_path, iris_spec):
    settings.MEDIA_ROOT = tmp_path
    return build_world(owner, tmp_path, iris_spec)


def all_routes(world):
    """(route, url) for every HTTP route; fails naming every route whose URL cannot be built or resolved."""
    value_for = lookup(world)
    built, problems = [], []
    for route in http_routes():
        try:
            url = concrete_url(route, value_for)
        except UnknownParameter as e:
            problems.append(str(e))
            continue
        try:
            match = resolve(url.split("?")[0])
        except Resolver404:
            problems.append(f"{route.route!r}: the URL built for it, {url}, does not resolve")
            continue
        if match.func is not route.callback and getattr(match.func, "__wrapped__", None) is not route.callback:
            problems.append(f"{route.route!r}: the URL built for it, {url}, reaches another view ({match.route})")
            continue
        built.append((route, url))
    assert not problems, "\n".join(problems)
    return built


def query_for(world):
    # Parameterless pages read ids from the query string (compare's runs, the wizard's from_run...): offer the
    # owner's ids under every name a view reads, so a page that trusts them is caught.
    w = world
    return (f"runs={w.run.pk}&run={w.run.pk}&experiment={w.experiment.pk}&dataset=csv:{w.dataset.pk}"
            f"&from_run={w.run.pk}&evaluate_model={w.model.pk}&model={w.model.pk}")


def body_for(world, url):
    """A request body naming the owner's objects: as form fields for pages, as JSON for the API."""
    w = world
    fields = {"experiment": w.experiment.pk, "run": w.run.pk, "dataset": w.dataset.pk, "model": w.model.pk,
              "name": "outsider-made", "runs": w.run.pk}
    if url.startswith("/api/"):
        fields["spec"] = {"dataset": {"kind": "csv", "id": w.dataset.pk}, "runner": "evaluation",
                          "evaluation": {"run": w.run.pk}, "task": "classification", "metric": "accuracy"}
        return {"data": json.dumps(fields), "content_type": "application/json"}
    return {"data": fields}


def send(client, method, url, world):
    kwargs = body_for(world, url) if method in ("post", "put", "patch", "delete") else {}
    if method in ("put", "patch", "delete") and not url.startswith("/api/"):
        kwargs = {"data": "", "content_type": "application/x-www-form-urlencoded"}
    response = getattr(client, method)(url, **kwargs)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response, body


def login_redirect(response):
    return response.status_code in (301, 302) and response["Location"].startswith(LOGIN_URLS)


def outsider_may_answer(route):
    """A parameterless route outside the admin shows the outsider their own things."""
    return not parameters(route) and not route.route.startswith("admin/")


def problems_for(who, client, routes, world, relogin=None):
    problems = []
    for route, url in routes:
        public = route.route in PUBLIC
        for method in METHODS:
            target = url if method not in ("get", "head") or parameters(route) else f"{url}?{query_for(world)}"
            response, body = send(client, method, target, world)
            if relogin and settings.SESSION_COOKIE_NAME in response.cookies:
                relogin()  # the route logged the outsider out (or changed their session): the sweep goes on as them
            status = response.status_code
            where = f"{who} {method.upper()} {target} ({route.route!r}) answered {status}"
            if status >= 500:
                problems.append(f"{where}: a server error")
            if found := leaked(world, body):
                problems.append(f"{where} with the owner's data: {found}")
            if public or (who == "outsider" and outsider_may_answer(route)):
                continue
            if method == "options" and who == "outsider":
                # DRF answers OPTIONS with the route's description (its name, parsers, renderers) and leaves out
                # the actions for an object the user cannot get, so a missing and a foreign object look alike.
                continue
            refused = (401, 403, 404, 405, 429)  # 429: the share links' miss throttle (sharing.throttle)
            if not (status in refused or login_redirect(response)):
                problems.append(f"{where}: it should refuse")
    return problems


def test_it_refuses_every_route_to_anonymous_and_outsiders(world, outsider):
    routes = all_routes(world)
    assert len(routes) > 100, "the sweep should see the whole URL configuration, admin and API included"
    # The sweep's own guard: a regression in the walker (say, DRF routes missed) would make it vacuous.
    seen = {route.route for route, _ in routes}
    for expected in ("runs/<int:run_id>/model/", "api/v1/runs/(?P<pk>[^/.]+)/model/", "models/<int:model_id>/download/",
                     "admin/runs/run/<path:object_id>/change/", "admin/rq/queues/<int:queue_index>/<str:job_id>/"):
        assert expected in seen, expected
    owner_client = Client(raise_request_exception=False)
    owner_client.force_login(world.owner)
    for route, url in routes:
        if not parameters(route) or route.route.startswith("admin/") or route.route in CATCH_ALLS:
            continue  # only the ids need proving; the owner is not staff (the admin is checked with staff below)
        response, body = send(owner_client, "get", url, world)
        assert response.status_code not in (404,) and response.status_code < 500, (
            f"The owner's GET {url} answered {response.status_code}: the sweep's ids do not reach a real object")

    before = snapshot(world)  # after the owner's login, which sets their last_login
    anonymous = Client(raise_request_exception=False)
    problems = problems_for("anonymous", anonymous, routes, world)
    outsider_client = Client(raise_request_exception=False)
    outsider_client.force_login(outsider)
    problems += problems_for("outsider", outsider_client, routes, world,
                             relogin=lambda: outsider_client.force_login(outsider))
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)
    assert not (changed := changes(before, snapshot(world))), "the sweep changed the owner's things:\n" + "\n".join(changed)
    assert_nothing_refers_to_the_owners(world, outsider)
    assert outsider_client.get("/").status_code == 200, "the outsider's sweep must have run logged in"


def assert_nothing_refers_to_the_owners(world, outsider):
    """The outsider made nothing out of the owner's things (a run of their experiment, a copy of their model)."""
    from experiments.models import Experiment, RegisteredModel
    from runs.models import Run

    w = world
    borrowed = {
        "runs of the owner's experiment": Run.objects.filter(owner=outsider, experiment=w.experiment),
        "re-runs of the owner's run": Run.objects.filter(owner=outsider, rerun_of=w.run),
        "runs on the owner's dataset": Run.objects.filter(owner=outsider, spec__dataset__id=w.dataset.pk,
                                                          spec__dataset__kind="csv"),
        "evaluations of the owner's run": Run.objects.filter(owner=outsider, spec__evaluation__run=w.run.pk),
        "experiments on the owner's dataset": Experiment.objects.filter(
            owner=outsider, spec__dataset__id=w.dataset.pk, spec__dataset__kind="csv"),
        "models promoted from the owner's run": RegisteredModel.objects.filter(owner=outsider, run=w.run),
    }
    made = {what: list(qs) for what, qs in borrowed.items() if qs.exists()}
    assert not made, f"the outsider made things out of the owner's: {made}"


def test_it_fails_a_route_whose_parameter_the_table_does_not_know():
    from django.urls import path

    from tests.routes import Route

    level = path("widgets/<int:widget_id>/", lambda request, widget_id: None)
    with pytest.raises(UnknownParameter, match="'widget_id'.*PARAMS"):
        concrete_url(Route("widgets/<int:widget_id>/", [level], level.callback), lookup(world=None))


def test_it_lets_staff_see_everyones_runs(world, staff):
    client = Client()
    client.force_login(staff)
    for url in (f"/runs/{world.run.pk}/", f"/api/v1/runs/{world.run.pk}/", f"/admin/runs/run/{world.run.pk}/change/"):
        response = client.get(url)
        assert response.status_code == 200 and MARK in response.content.decode(), url
    download = client.get(f"/runs/{world.run.pk}/model/")
    assert download.status_code == 200 and MARK.encode() in b"".join(download.streaming_content)



REFUSED_WS = (4401, 4403, 4404, 403)  # close codes of live/consumers.py, or the handshake's HTTP refusal


def ws_attempt(url, idle=15, meanwhile=None, **kwargs):
    """Open a socket and read until the server closes it or stays silent for `idle` seconds.

    Returns (the close code, the handshake's HTTP status if refused, or "open"; the messages read). `meanwhile`
    runs once the socket is open: the owner doing something a leaky stream would pass on."""
    received = []
    try:
        with connect(url, open_timeout=30, **kwargs) as ws:
            if meanwhile:
                meanwhile()
            try:
                while True:
                    received.append(ws.recv(timeout=idle))
            except TimeoutError:
                return "open", received
            except ConnectionClosed as closed:
                return (closed.rcvd.code if closed.rcvd else None), received
    except InvalidStatus as refused:
        return refused.response.status_code, received


@pytest.mark.django_db(transaction=True)
def test_it_refuses_every_websocket_route_to_anonymous_and_outsiders(daphne_server, world, outsider):
    """Every route of the ASGI router's websocket branch. A route naming a run refuses anonymous and outsiders
    (4401/4404, or a refused handshake); a route without parameters (a user's own feed) refuses anonymous and
    may serve an outsider, who must receive nothing of the owner's, even while the owner launches a run."""
    from config.asgi import application
    from runs.control import launch_run

    routes = websocket_routes(application)
    assert routes, "the sweep should find the ASGI router's WebSocket routes"
    base = daphne_server.url.replace("http://", "ws://")
    owner_cookie = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session_key_for(world.owner)}"}
    outsider_token = Token.objects.create(user=outsider).key
    attempts = {
        "anonymous": {},
        "anonymous with a bad token": {"query": "token=nope"},
        "outsider (session)": {"additional_headers": {
            "Cookie": f"{settings.SESSION_COOKIE_NAME}={session_key_for(outsider)}"}},
        "outsider (token)": {"query": f"token={outsider_token}"},
        "outsider (token subprotocol)": {"subprotocols": [f"token.{outsider_token}"]},
        # Another site's page riding on the owner's session cookie (cross-site WebSocket hijacking).
        "another site with the owner's cookie": {"additional_headers": owner_cookie, "origin": "http://evil.example"},
    }

    def owner_launches():
        launch_run(world.owner, spec=world.run.spec, name=f"{MARK} launched while watched")

    problems = []
    for route in routes:
        url = base + concrete_url(route, lookup(world))
        named = bool(parameters(route))
        if named and route.route not in BEARER:
            # The owner is served on the same URL: the ids reach the run, so the refusals below mean something.
            code, received = ws_attempt(url, additional_headers=owner_cookie)
            assert code == 1000 and any(MARK in m for m in received), (
                f"the owner was not served on {url} (closed {code}): the sweep's ids do not reach the run")
        for who, how in attempts.items():
            how = dict(how)
            query = how.pop("query", None)
            own_feed = who.startswith("outsider") and not named
            code, received = ws_attempt(f"{url}?{query}" if query else url, idle=3 if own_feed else 15,
                                        meanwhile=owner_launches if own_feed else None, **how)
            if not (code in REFUSED_WS or (own_feed and code in ("open", 1000))):
                problems.append(f"{who} on {route.route!r}: {code}, not refused")
            if own_feed:
                received = [m for m in received if MARK in m]
            if received:
                problems.append(f"{who} on {route.route!r} received {len(received)} messages: {received[0][:200]}")
    assert not problems, "\n".join(problems)
