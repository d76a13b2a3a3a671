"""The share links' API, under /api/v1/ beside config.api_urls (included first: its catch-all 404 is last)."""

from rest_framework.routers import DefaultRouter

from .api import ShareLinkViewSet

app_name = "share_api"

router = DefaultRouter()
router.include_format_suffixes = False
router.root_view_name = "share-root"
router.include_root_view = False
router.register("shares", ShareLinkViewSet, basename="share")
urlpatterns = router.urls
