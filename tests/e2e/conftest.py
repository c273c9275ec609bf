"""The end-to-end tests' fixtures: a real Label Studio 1.23.2 and the backend under gunicorn,
from :mod:`tests.live_stack` (skipped when Label Studio is missing, a failure under CI=true)."""
from tests.live_stack import (PASSWORD, TOKEN, USER, backend, backend_env,  # noqa: F401
                              e2e_dir, label_studio, make_noisy_sample, noisy_sample, read_truth,
                              sample_size)
