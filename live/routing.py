from django.urls import path

from . import consumers, list_consumer

websocket_urlpatterns = [
    # JSON for API clients and HTML fragments for the run page: one stream, the same seqs.
    path("ws/runs/<int:run_id>/", consumers.RunEventsConsumer.as_asgi()),
    path("ws/runs/<int:run_id>/fragments/", consumers.RunFragmentsConsumer.as_asgi()),
    # The runs list: every row of the page (and runs launched elsewhere) on one socket (live/listfeed.py).
    path("ws/runs/list/", list_consumer.RunListConsumer.as_asgi()),
]
