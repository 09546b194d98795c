"""The Celery app: `celery -A config worker` starts a worker."""

import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("annotation_server")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _prepare_worker_process(**kwargs) -> None:
    """One PyTorch thread per worker process (the pool already uses every core), and
    PyTorch and the cold start's k-means loaded and warmed up before the first round
    instead of during it. With ANNOTATION_WARM_FEATURIZERS=1 (bin/run sets it for the
    featurize worker only: the sentence encoder holds ~640 MiB), the text featurizers are
    loaded too."""
    import numpy as np
    import torch

    from sampler.ensemble import MLPEnsemble
    from sampler.selection import cold_start

    torch.set_num_threads(int(os.environ.get("ANNOTATION_TORCH_THREADS", "1")))
    MLPEnsemble(n_members=1, epochs=2).fit(
        np.zeros((4, 4), dtype=np.float32), np.array([0, 1, 0, 1]), 2
    )
    # The cold start's k-means (scikit-learn) loads in seconds: not during a first round.
    cold_start(np.eye(8, dtype=np.float32), np.ones(8), remaining=2, batch_size=2)
    if os.environ.get("ANNOTATION_WARM_FEATURIZERS") == "1":  # the featurize worker's
        from sampler.features import warm_up

        warm_up()
