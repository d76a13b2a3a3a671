"""The RQ worker class `make run` starts: it fails a run at once when its work horse dies."""

from rq.worker import Worker

from .models import IllegalTransition, Run


class RunwatchWorker(Worker):
    def handle_work_horse_killed(self, job, retpid, ret_val, rusage):
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)
        run = Run.objects.filter(rq_job_id=job.id).first()
        if run is None or run.is_terminal:
            return
        import os

        how = f"signal {os.WTERMSIG(ret_val)}" if ret_val and os.WIFSIGNALED(ret_val) else f"exit status {ret_val}"
        message = f"The work horse running this job died ({how}); it may have been killed or run out of memory."
        try:
            if run.status == Run.Status.CANCELLING:
                run.mark_stopped("Stopped: the work horse ended while stopping")
            else:
                run.mark_failed(message)
        except IllegalTransition:
            pass
