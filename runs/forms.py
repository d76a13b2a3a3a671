"""Forms of the runs pages' POSTs. A value that is not one of the user's objects (not a number, a fraction, a
NUL, past the database's integers, someone else's) is a field error, never an exception in a query."""

from django import forms

from experiments.models import Experiment, RegisteredModel

CHOOSE = "Choose one of your experiments to launch."
NAME_MAX = RegisteredModel._meta.get_field("name").max_length


class LaunchForm(forms.Form):
    # ModelChoiceField looks the value up only among the user's experiments and turns every value the database
    # cannot take into "invalid_choice"; outsized integers match nothing (Django's integer lookups).
    experiment = forms.ModelChoiceField(queryset=Experiment.objects.none(),
                                        error_messages={"required": CHOOSE, "invalid_choice": CHOOSE})

    def __init__(self, data, user):
        super().__init__(data)
        self.fields["experiment"].queryset = Experiment.objects.filter(owner=user)


class PromoteForm(forms.Form):
    # A CharField refuses a NUL, which PostgreSQL cannot store or even compare (the name is looked up first).
    name = forms.CharField(max_length=NAME_MAX, error_messages={
        "required": "Give the model a name to promote it under.",
        "max_length": f"A model name has at most {NAME_MAX} characters."})

    def first_error(self):
        return next(iter(self.errors.get("name", [])), "")
