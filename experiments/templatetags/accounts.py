from django import template

from experiments.accounts import signup_enabled as _signup_enabled

register = template.Library()


@register.simple_tag
def signup_enabled():
    """Whether the login page offers sign-up (settings.RUNWATCH["SIGNUP_ENABLED"], read per request)."""
    return _signup_enabled()
