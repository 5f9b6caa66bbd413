"""Run cloud-info-provider-service 1.2.0 unmodified, with two test-only
redirections: GOCDB's URL goes to $FAKE_GOCDB_URL (the reference site's
GOCDB), and when $SOURCE_DATE_EPOCH is set the GLUE CreationTime (evaluated
once at import of cloud_info_provider.glue) is that instant."""
import datetime
import os
import sys

import requests

_orig_get = requests.get


def _get(url, *a, **kw):
    if url.startswith("https://goc.egi.eu/gocdbpi/public/") and os.environ.get("FAKE_GOCDB_URL"):
        url = os.environ["FAKE_GOCDB_URL"]
    return _orig_get(url, *a, **kw)


requests.get = _get

if os.environ.get("SOURCE_DATE_EPOCH"):
    from cloud_info_provider import glue

    fixed = datetime.datetime.fromtimestamp(int(os.environ["SOURCE_DATE_EPOCH"]), datetime.timezone.utc)
    stack = [glue.GlueBase]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        cls.model_fields["creation_time"].default = fixed
        cls.model_rebuild(force=True)

from cloud_info_provider.core import main  # noqa: E402

sys.exit(main())
