"""{% waiting_reason run as reason %}: why a queued run waits (runs.worker.queue), read once per request."""

from django import template

from runs.worker import queue

register = template.Library()


@register.simple_tag(takes_context=True)
def waiting_reason(context, run):
    return queue.waiting_reason(run, queue.snapshot(context.get("request")))
