from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

PAST_EXPIRY = "The expiry must be in the future."


def check_expiry(value):
    """The one rule for an expiry, for the form and the API: empty (no expiry) or in the future."""
    if value is not None and value <= timezone.now():
        raise ValidationError(PAST_EXPIRY)
    return value


class ShareForm(forms.Form):
    expires_at = forms.DateTimeField(required=False, label="Expires", help_text="Empty: until revoked.",
                                     widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))

    def clean_expires_at(self):
        return check_expiry(self.cleaned_data.get("expires_at"))
