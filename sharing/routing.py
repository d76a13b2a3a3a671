from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/share/<str:token>/", consumers.SharedRunEventsConsumer.as_asgi()),
    path("ws/share/<str:token>/fragments/", consumers.SharedRunFragmentsConsumer.as_asgi()),
]
