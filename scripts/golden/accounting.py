#!/usr/bin/env python3
"""Golden accounting messages rendered by cASO itself.

Reads tests/fixtures/accounting/inputs.json, builds records with cASO's own
code (caso/record.py record classes, and the pure parts of the Nova and Cinder
extractors: _build_record, _get_server_start/_end, vm_status,
_process_servers_for_period, _build_acc_records, Cinder _build_record) with
fake OpenStack objects, pushes them through caso.messenger.ssm.SSMMessenger
into a dirq spool and copies each spooled message to
tests/fixtures/accounting/golden/:

  cloud.txt, ip.json, accelerator.json, storage.xml   all records, max_size 100
  cloud-batch-N.txt                                   cloud records, max_size from inputs

tests/accounting renders the same inputs with the appliance and compares
byte for byte.

Inputs are sanitised first with sanitize() below, which mirrors the
appliance's rule (src/accounting/sanitize.rs): caso itself only drops
non-ASCII from MachineName/LocalUserId/GlobalUserName and lets %%, CR/LF and
over-long values through, producing messages APEL splits or rejects.

Run it with a Python that has caso==5.2.2 and dirq==1.8 (on the reference
site: $REFSITE_PEERS_PYTHON) and TZ=UTC:

  TZ=UTC $REFSITE_PYTHON scripts/golden/accounting.py            # (re)write goldens
  TZ=UTC $REFSITE_PYTHON scripts/golden/accounting.py --check    # compare only

cASO turns naive UTC datetimes into epochs with datetime.timestamp(), which
Python reads as local time, and writes the StAR createTime/EndTime as naive
local time (docs: spec accounting.md section 1.8). Under a non-UTC TZ
(e.g. TZ=Asia/Kolkata) --check therefore reports cloud.txt, cloud-batch-*.txt
and storage.xml as different: that is the cASO bug, the goldens are the UTC
ones. ip.json and accelerator.json are TZ-independent.
"""

import argparse
import datetime
import json
import os
import pathlib
import re
import sys
import tempfile
import warnings

# caso itself assigns the plain string "started" to the enum-typed status
# (nova.py, re-publishing a past window); pydantic warns, the output is right.
warnings.filterwarnings("ignore", message="Pydantic serializer warnings")

REPO = pathlib.Path(__file__).resolve().parents[2]
INPUTS = REPO / "tests/fixtures/accounting/inputs.json"
GOLDEN = REPO / "tests/fixtures/accounting/golden"
CASO_VERSION = "5.2.2"
DIRQ_VERSION = "1.8"

MAX_LEN = 255  # APEL VARCHAR(255)
MAX_BENCHMARK_TYPE_LEN = 50  # APEL BenchmarkType VARCHAR(50)


def sanitize(value, max_len=MAX_LEN):
    """Mirror of the appliance's apel_text(): ASCII only, no control chars, no %%."""
    if value is None:
        return None
    out = []
    for ch in value:
        code = ord(ch)
        if code >= 0x80:
            continue  # dropped, like caso's .encode("ascii", "ignore")
        if code < 0x20 or code == 0x7F:
            ch = " "
        out.append(ch)
    return re.sub("%{2,}", "%", "".join(out))[:max_len]


def naive_utc(text):
    """An OpenStack timestamp as the naive UTC datetime cASO works with."""
    import dateutil.parser

    return dateutil.parser.parse(text).replace(tzinfo=None)


def naive_local(text):
    """A UTC instant as cASO's datetime.now(): naive *local* time."""
    aware = naive_utc(text).replace(tzinfo=datetime.timezone.utc)
    return datetime.datetime.fromtimestamp(aware.timestamp())


class FakeResource:
    """Stands in for a novaclient/cinderclient Resource (attribute access and
    explicit __getattr__ calls, as caso uses both)."""

    def __init__(self, attrs):
        self.__dict__["_attrs"] = attrs

    def __getattr__(self, name):
        try:
            return self.__dict__["_attrs"][name]
        except KeyError:
            raise AttributeError(name) from None


def check_versions():
    import importlib.metadata as md

    got = {p: md.version(p) for p in ("caso", "dirq")}
    want = {"caso": CASO_VERSION, "dirq": DIRQ_VERSION}
    if got != want:
        sys.exit(f"need {want}, found {got}: pip install caso=={CASO_VERSION} dirq=={DIRQ_VERSION}")


def init_conf(data):
    """oslo.config as caso-extract would have it: no config file, site names set."""
    from oslo_config import cfg

    import caso.extract.openstack.cinder  # noqa: F401  registers its options
    import caso.extract.openstack.nova  # noqa: F401  registers [benchmark], [accelerator]
    import caso.messenger.ssm  # noqa: F401  registers [ssm]

    conf = cfg.CONF
    conf([], project="caso", default_config_files=[])
    conf.set_override("site_name", data["site_name"])
    conf.set_override("service_name", data["service_name"])


def set_spool(spool, max_size):
    from oslo_config import cfg

    cfg.CONF.set_override("output_path", spool, group="ssm")
    cfg.CONF.set_override("max_size", max_size, group="ssm")


def sanitized_server(raw):
    s = dict(raw)
    for key in ("name", "user_id", "tenant_id"):
        s[key] = sanitize(s[key])
    if s["image"]:
        s["image"] = {"id": sanitize(s["image"]["id"])}
    return FakeResource(s)


def sanitized_flavors(data):
    from oslo_config import cfg

    conf = cfg.CONF
    flavors = {}
    for fid, raw in data["flavors"].items():
        f = json.loads(json.dumps(raw))
        extra = f["extra"]
        for key in list(extra):
            cap = MAX_BENCHMARK_TYPE_LEN if key == conf.benchmark.name_key else MAX_LEN
            extra[key] = sanitize(extra[key], cap)
        flavors[fid] = f
    return flavors


def build_records(data):
    """All records in cASO's order: per project, Nova (cloud, then
    accelerator), Cinder (storage); then the IP and direct accelerator records."""
    import caso.record
    from caso.extract.openstack.cinder import CinderExtractor
    from caso.extract.openstack.nova import NovaExtractor

    extract_from = naive_utc(data["extract_from"])
    extract_to = naive_utc(data["extract_to"])
    measure_time = naive_local(data["measure_time"])
    users = {k: sanitize(v) for k, v in data["users"].items()}
    images = {
        k: {kk: sanitize(vv) for kk, vv in v.items()} for k, v in data["images"].items()
    }
    flavors = sanitized_flavors(data)

    class FakeNova(NovaExtractor):
        def __init__(self, project, vo):  # no clients: only the pure methods run
            self.project = project
            self.project_id = project
            self.vo = vo
            self.users = users
            self.images = images
            self.flavors = flavors
            self.records = {}
            self.acc_records = {}

    class FakeCinder(CinderExtractor):
        def __init__(self, project, vo):
            self.project = project
            self.project_id = project
            self.vo = vo
            self.users = users

        def _get_measure_time(self):
            return measure_time

    records = []
    for project in data["projects"]:
        vo = sanitize(project["vo"])
        servers = [sanitized_server(s) for s in project["servers"]]
        assert [s.created for s in servers] == sorted(s.created for s in servers), (
            "servers must be listed in caso's order (by created)"
        )
        nova = FakeNova(project["id"], vo)
        nova._process_servers_for_period(servers, extract_from, extract_to)
        records += list(nova.records.values()) + list(nova.acc_records.values())

        cinder = FakeCinder(project["id"], vo)
        for raw in project["volumes"]:
            vol = dict(raw)
            vol["name"] = sanitize(vol["name"])
            records.append(
                cinder._build_record(FakeResource(vol), extract_from, extract_to)
            )

    vos = {p["id"]: sanitize(p["vo"]) for p in data["projects"]}
    for ip in data["ips"]:
        records.append(
            caso.record.IPRecord(
                uuid=ip["uuid"],
                measure_time=measure_time,
                site_name=data["site_name"],
                compute_service=data["service_name"],
                user_id=sanitize(ip["user_id"]),
                user_dn=users.get(ip["user_id"]),
                group_id=ip["project_id"],
                fqan=vos[ip["project_id"]],
                ip_version=ip["ip_version"],
                public_ip_count=ip["count"],
            )
        )
    for acc in data["accelerators"]:
        r = caso.record.AcceleratorRecord(
            uuid=acc["vm_uuid"],
            site_name=data["site_name"],
            compute_service=data["service_name"],
            user_dn=sanitize(acc["user_dn"]),
            fqan=vos[acc["project_id"]],
            count=acc["count"],
            available_duration=acc["available_duration"],
            measurement_month=acc["month"],
            measurement_year=acc["year"],
            accelerator_type=sanitize(acc["type"]),
            cores=acc["cores"],
            model=sanitize(acc["model"]),
        )
        r.active_duration = acc["active_duration"]
        records.append(r)

    for r in records:
        assert r.cloud_type == data["cloud_type"], r.cloud_type
    return records


def spool_messages(records, max_size):
    """Push records with caso's SSM messenger; return the spooled messages in
    dirq order."""
    import caso.messenger.ssm
    from dirq.QueueSimple import QueueSimple

    with tempfile.TemporaryDirectory() as spool:
        set_spool(spool, max_size)
        caso.messenger.ssm.SSMMessenger().push(records)
        q = QueueSimple(spool)
        out = []
        for name in q:
            assert q.lock(name)
            out.append(q.get(name))
            q.remove(name)
        return out


def kind_of(body):
    if body.startswith(b"APEL-cloud-message: "):
        return "cloud", "txt"
    if body.startswith(b'{"Type": "APEL Public IP message"'):
        return "ip", "json"
    if body.startswith(b'{"Type": "APEL-accelerator-message"'):
        return "accelerator", "json"
    if body.startswith(b"<sr:StorageUsageRecords"):
        return "storage", "xml"
    raise ValueError(f"unknown message: {body[:60]!r}")


def render(data):
    import caso.record

    files = {}
    records = build_records(data)
    for body in spool_messages(records, 100):
        kind, ext = kind_of(body)
        name = f"{kind}.{ext}"
        assert name not in files, f"{name}: more than one message"
        files[name] = body

    cloud = [r for r in build_records(data) if isinstance(r, caso.record.CloudRecord)]
    for i, body in enumerate(spool_messages(cloud, data["batch_max_records"]), 1):
        files[f"cloud-batch-{i}.txt"] = body
    return files


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with the checked-in goldens, write nothing")
    ap.add_argument("--out", type=pathlib.Path, default=GOLDEN, help="output directory")
    args = ap.parse_args()

    check_versions()
    data = json.loads(INPUTS.read_text(encoding="utf-8"))
    init_conf(data)
    files = render(data)

    if args.check:
        existing = {p.name for p in args.out.iterdir()} if args.out.is_dir() else set()
        bad = sorted(n for n in files if n not in existing or (args.out / n).read_bytes() != files[n])
        extra = sorted(existing - set(files))
        for n in bad:
            print(f"differs: {n}")
        for n in extra:
            print(f"not rendered: {n}")
        print(f"TZ={os.environ.get('TZ', '')}: {len(files) - len(bad)}/{len(files)} goldens identical")
        sys.exit(1 if bad or extra else 0)

    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.iterdir():
        if old.name not in files:
            old.unlink()
    for name, body in sorted(files.items()):
        (args.out / name).write_bytes(body)
        print(f"wrote {args.out / name} ({len(body)} bytes)")


if __name__ == "__main__":
    main()
