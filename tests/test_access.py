"""The one access policy (accounts/access.py): owner, staff, outsider, anonymous, and a share link's grant."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import Http404

from accounts import access
from experiments.models import Experiment
from runs.control import launch_run
from runs.models import Run

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(owner, experiment):
    return launch_run(owner, experiment=experiment)


def test_it_lets_the_owner_and_staff_see_and_act(owner, staff, run):
    for user in (owner, staff):
        assert list(access.visible(user, Run.objects.all())) == [run]
        assert access.can_view(user, run) and access.can_act(user, run)


def test_it_hides_everything_from_outsiders_and_anonymous(outsider, run):
    for user in (outsider, AnonymousUser(), None):
        assert not access.visible(user, Run.objects.all()).exists()
        assert not access.can_view(user, run) and not access.can_act(user, run)
    with pytest.raises(Http404):
        access.get_visible_or_404(outsider, Run.objects.all(), pk=run.pk)


def test_it_lets_a_share_grant_see_its_one_run_and_act_on_nothing(owner, experiment, run):
    other = launch_run(owner, experiment=experiment)
    grant = access.ShareGrant(link_id=1, label="runs.run", pks=(run.pk,))
    assert list(access.visible(grant, Run.objects.all())) == [run]
    assert access.can_view(grant, run) and not access.can_view(grant, other)
    assert not access.can_act(grant, run)
    assert not access.visible(grant, Experiment.objects.all()).exists()  # not the run's experiment either
    assert not Run.objects.visible_to(grant).filter(pk=other.pk).exists()
