"""Python side of scripts/reference-site; runs with the reference-site venv.

Subcommands (all idempotent; settings come from REFSITE_* environment
variables that the bash script sets):

  wal DB...             switch SQLite databases to journal_mode=WAL
  neutron-schema URL    build Neutron's schema from its models (SQLite cannot
                        run Neutron's migrations)
  catalog               Keystone services, endpoints and service users
  bootstrap OUT         wait until Nova/Cinder backends are usable, then seed
                        the site (flavors, image, networks, VO projects, users,
                        application credential, OIDC federation) and write
                        the ids the tests need to OUT as KEY=VALUE lines

Everything talks to the APIs with keystoneauth1 as the admin user, in one
process per phase: each request costs ~20 ms, a Python start ~1 s.
"""
import os
import re
import sqlite3
import sys
import time

env = os.environ


# --------------------------------------------------------------- sqlite --
def cmd_wal(dbs):
    # WAL journal: readers no longer block writers -> no "database is locked"
    # (Keystone hit it on its first POST with the default rollback journal).
    for db in dbs:
        c = sqlite3.connect(db)
        c.execute("PRAGMA journal_mode=WAL")
        c.close()


def cmd_neutron_schema(url):
    # Neutron's alembic migrations ALTER constraints (unsupported by SQLite):
    # build the schema from the models like Neutron's own unit tests do; the
    # caller then runs `neutron-db-manage stamp heads`.
    import sqlalchemy as sa
    from neutron.db.migration.models import head  # noqa: F401 (imports all models)
    from neutron_lib.db import model_base
    model_base.BASEV2.metadata.create_all(sa.create_engine(url))


# ------------------------------------------------------------- sessions --
H = env.get("REFSITE_HOST", "127.0.0.1")
KS = env.get("REFSITE_KS_URL", f"http://{H}:5000") + "/v3"


def session(user, password, project, domain="default"):
    from keystoneauth1 import session as ksa_session
    from keystoneauth1.identity import v3
    return ksa_session.Session(auth=v3.Password(
        auth_url=KS, username=user, password=password, user_domain_id=domain,
        project_name=project, project_domain_id="default"))


def port(name):
    return env[f"REFSITE_PORT_{name.upper()}"]


class Api:
    """Thin helper over a keystoneauth session: calls by service type."""

    def __init__(self, sess):
        self.s = sess

    def __call__(self, method, stype, path, ok=(200, 201, 202, 204), **kw):
        kw.setdefault("raise_exc", False)
        r = self.s.request(path, method, endpoint_filter={
            "service_type": stype, "interface": "public", "region_name": "RegionOne"}, **kw)
        if r.status_code not in ok:
            sys.exit(f"{method} {stype} {path}: HTTP {r.status_code}: {r.text[:500]}")
        return r

    def ks(self, method, path, **kw):
        return self(method, "identity", path, **kw)


def admin():
    return Api(session("admin", env["REFSITE_ADMIN_PASSWORD"], "admin"))


# -------------------------------------------------------------- catalog --
def cmd_catalog():
    a = admin()
    svc_pw = env["REFSITE_SERVICE_PASSWORD"]
    catalog = [  # (type, name, url, service user)
        ("image", "glance", f"http://{H}:{port('glance')}", "glance"),
        ("placement", "placement", f"http://{H}:{port('placement')}", "placement"),
        ("compute", "nova", f"http://{H}:{port('nova')}/v2.1", "nova"),
        ("network", "neutron", f"http://{H}:{port('neutron')}", "neutron"),
        ("block-storage", "cinder", f"http://{H}:{port('cinder')}/v3", "cinder"),
        ("volumev3", "cinderv3", f"http://{H}:{port('cinder')}/v3", None),
    ]
    # one GET per collection, then only the missing POST/PUTs
    projects = {p["name"]: p for p in a.ks("GET", "/projects").json()["projects"]}
    users = {u["name"]: u for u in a.ks("GET", "/users").json()["users"]}
    roles = {r["name"]: r for r in a.ks("GET", "/roles").json()["roles"]}
    services = {s["type"]: s for s in a.ks("GET", "/services").json()["services"]}
    endpoints = {(e["service_id"], e["interface"]): e
                 for e in a.ks("GET", "/endpoints").json()["endpoints"]}
    if "service" not in projects:
        projects["service"] = a.ks("POST", "/projects", json={"project": {
            "name": "service", "domain_id": "default"}}).json()["project"]
    for rname in ("admin", "service"):
        if rname not in roles:
            roles[rname] = a.ks("POST", "/roles", json={"role": {"name": rname}}).json()["role"]
    for stype, sname, url, uname in catalog:
        if stype not in services:
            services[stype] = a.ks("POST", "/services", json={"service": {
                "type": stype, "name": sname}}).json()["service"]
        sid = services[stype]["id"]
        for iface in ("public", "internal", "admin"):
            ep = endpoints.get((sid, iface))
            if ep is None:
                a.ks("POST", "/endpoints", json={"endpoint": {
                    "service_id": sid, "interface": iface, "url": url, "region_id": "RegionOne"}})
            elif ep["url"] != url:
                a.ks("PATCH", f"/endpoints/{ep['id']}", json={"endpoint": {"url": url}})
        if uname and uname not in users:
            u = a.ks("POST", "/users", json={"user": {
                "name": uname, "password": svc_pw, "domain_id": "default",
                "default_project_id": projects["service"]["id"]}}).json()["user"]
            for rname in ("admin", "service"):
                a.ks("PUT", f"/projects/{projects['service']['id']}/users/{u['id']}/roles/{roles[rname]['id']}")


# ------------------------------------------------------------ readiness --
def alive(pid_file):
    """Same test as the bash side: the process exists and is no zombie, and
    its start time matches when the pid file records one ("PID STARTTIME";
    add-ons may write only "PID")."""
    try:
        fields = open(pid_file).read().split()
        stat = open(f"/proc/{fields[0]}/stat").read().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return False
    return stat[0] not in ("Z", "X") and (len(fields) < 2 or stat[19] == fields[1])


def wait(what, fn, timeout=240):
    """Poll fn until truthy; exit at once (code 3) when a recorded daemon died,
    so the bash side can respawn it instead of waiting out the timeout."""
    t0 = time.time()
    run = env["REFSITE_RUN"]
    while True:
        for f in os.listdir(run):
            if f.endswith(".pid") and not alive(os.path.join(run, f)):
                print(f"{f[:-4]} died while waiting for {what}", file=sys.stderr)
                sys.exit(3)
        try:
            r = fn()
            if r:
                return r
        except Exception:  # noqa: BLE001 - not up yet
            pass
        if time.time() - t0 > timeout:
            sys.exit(f"timeout waiting for {what}")
        time.sleep(1)


def count(db, sql):
    c = sqlite3.connect(db, timeout=10)
    try:
        return c.execute(sql).fetchone()[0]
    finally:
        c.close()


def ready(a):
    data = env["REFSITE_DATA"]
    since = env.get("REFSITE_COMPUTE_SINCE", "")  # "" when nova-compute was not (re)started
    wait("nova-compute in placement + host mapping", lambda:
         count(f"{data}/nova_cell1.db", "select count(*) from compute_nodes where deleted=0 "
               f"and coalesce(updated_at, created_at) >= '{since}'") > 0 and
         count(f"{data}/nova_api.db", "select count(*) from host_mappings") > 0 and
         count(f"{data}/placement.db", "select count(*) from inventories") > 0)
    wait("cinder pool reported to scheduler", lambda: a(
        "GET", "block-storage", "/scheduler-stats/get_pools", ok=(200,)).json()["pools"])


# ----------------------------------------------------------------- seed --
def seed_infra(a):
    """The harness's seed: image, networks, router (as admin)."""
    if not a("GET", "image", "/v2/images?name=test-image").json()["images"]:
        img = a("POST", "image", "/v2/images", json={
            "name": "test-image", "disk_format": "raw", "container_format": "bare",
            "visibility": "public"}).json()
        a("PUT", "image", f"/v2/images/{img['id']}/file", data=b"\0" * 1048576,
          headers={"Content-Type": "application/octet-stream"})

    def one(kind, name, body):
        got = a("GET", "network", f"/v2.0/{kind}s?name={name}").json()[f"{kind}s"]
        return got[0] if got else a("POST", "network", f"/v2.0/{kind}s", json={kind: body}).json()[kind]
    pub = one("network", "public", {"name": "public", "router:external": True, "shared": False,
                                    "provider:network_type": "flat",
                                    "provider:physical_network": "public"})
    one("subnet", "public-subnet", {"name": "public-subnet", "network_id": pub["id"],
                                    "ip_version": 4, "cidr": "203.0.113.0/24", "enable_dhcp": False})
    # shared, so every VO project can boot on it
    priv = one("network", "private", {"name": "private", "shared": True})
    psub = one("subnet", "private-subnet", {"name": "private-subnet", "network_id": priv["id"],
                                            "ip_version": 4, "cidr": "10.0.0.0/24"})
    r = one("router", "router1", {"name": "router1",
                                  "external_gateway_info": {"network_id": pub["id"]}})
    if not a("GET", "network", f"/v2.0/ports?device_id={r['id']}&network_id={priv['id']}").json()["ports"]:
        a("PUT", "network", f"/v2.0/routers/{r['id']}/add_router_interface",
          json={"subnet_id": psub["id"]})
    img = a("GET", "image", "/v2/images?name=test-image").json()["images"][0]
    return {"REFSITE_IMAGE_ID": img["id"], "REFSITE_PUBLIC_NETWORK_ID": pub["id"],
            "REFSITE_PRIVATE_NETWORK_ID": priv["id"]}


GPU_SPECS = {"Accelerator:Vendor": "NVIDIA", "Accelerator:Model": "Tesla V100",
             "Accelerator:Number": "2", "Accelerator:Type": "GPU"}


def seed_flavors(a, alpha1_id):
    flavors = {f["name"]: f for f in a("GET", "compute", "/flavors/detail?is_public=None")
               .json()["flavors"]}

    def flavor(name, vcpus, ram, disk, public=True):
        if name not in flavors:
            flavors[name] = a("POST", "compute", "/flavors", json={"flavor": {
                "name": name, "vcpus": vcpus, "ram": ram, "disk": disk,
                "os-flavor-access:is_public": public}}).json()["flavor"]
        return flavors[name]
    flavor("m1.tiny", 1, 512, 1)
    flavor("m1.small", 1, 2048, 20)
    gpu = flavor("g1.gpu", 8, 16384, 40)
    have = a("GET", "compute", f"/flavors/{gpu['id']}/os-extra_specs").json()["extra_specs"]
    if any(have.get(k) != v for k, v in GPU_SPECS.items()):
        a("POST", "compute", f"/flavors/{gpu['id']}/os-extra_specs", json={"extra_specs": GPU_SPECS})
    priv = flavor("p1.private", 2, 4096, 20, public=False)
    access = a("GET", "compute", f"/flavors/{priv['id']}/os-flavor-access").json()["flavor_access"]
    if not any(x["tenant_id"] == alpha1_id for x in access):
        a("POST", "compute", f"/flavors/{priv['id']}/action",
          json={"addTenantAccess": {"tenant": alpha1_id}})
    return {"REFSITE_GPU_FLAVOR_ID": gpu["id"], "REFSITE_PRIVATE_FLAVOR_ID": priv["id"],
            "REFSITE_TINY_FLAVOR_ID": flavors["m1.tiny"]["id"]}


# -------------------------------------------------- VOs, users, appcred --
VO_ALPHA, VO_BETA = "vo.alpha.example", "vo.beta.example"
PROJECTS = (("alpha-1", VO_ALPHA), ("alpha-2", VO_ALPHA), ("beta-1", VO_BETA))
IDP, PROTOCOL, MAPPING = "egi.eu", "openid", "egi.eu-openid"
FED_DOMAIN = "egi.eu"  # ("federated" is reserved by Keystone)


def seed_quotas(a, projects):
    """Room for the tests and the demo: the default quotas (10 instances,
    10 volumes, 50 floating IPs) run out after a few test runs."""
    for name, _ in PROJECTS:
        pid = projects[name]["id"]
        a("PUT", "compute", f"/os-quota-sets/{pid}", json={"quota_set": {
            "instances": 1000, "cores": 4000, "ram": 4096000}})
        a("PUT", "volumev3", f"/os-quota-sets/{pid}", json={"quota_set": {
            "volumes": 1000, "gigabytes": 10000, "snapshots": 1000}})
        a("PUT", "network", f"/v2.0/quotas/{pid}", json={"quota": {
            "floatingip": 1000, "port": 2000}})


def seed_identity(a):
    out = {}
    roles = {r["name"]: r["id"] for r in a.ks("GET", "/roles").json()["roles"]}
    for rname in ("member", "reader"):
        if rname not in roles:  # keystone-manage bootstrap creates them; be safe
            roles[rname] = a.ks("POST", "/roles", json={"role": {"name": rname}}).json()["role"]["id"]
    projects = {p["name"]: p for p in a.ks("GET", "/projects?domain_id=default").json()["projects"]}
    for name, vo in PROJECTS:
        # "VO" is a Keystone project extra attribute (what `openstack project
        # create --property VO=...` sets); the appliance may read it.
        p = projects.get(name)
        if p is None:
            p = a.ks("POST", "/projects", json={"project": {
                "name": name, "domain_id": "default", "description": f"{vo} project {name}",
                "VO": vo}}).json()["project"]
        elif p.get("VO") != vo:
            p = a.ks("PATCH", f"/projects/{p['id']}", json={"project": {"VO": vo}}).json()["project"]
        projects[name] = p
        out["REFSITE_PROJECT_" + name.replace("-", "").upper() + "_ID"] = p["id"]

    users = {u["name"]: u for u in a.ks("GET", "/users?domain_id=default").json()["users"]}

    def user(name, password, project):
        u = users.get(name)
        if u is None:
            u = a.ks("POST", "/users", json={"user": {
                "name": name, "password": password, "domain_id": "default",
                "default_project_id": projects[project]["id"]}}).json()["user"]
        else:  # password known to this base? (a wrong one only after a hand edit)
            r = a.s.post(f"{KS}/auth/tokens", authenticated=False, raise_exc=False, json={
                "auth": {"identity": {"methods": ["password"], "password": {"user": {
                    "id": u["id"], "password": password}}}}})
            if r.status_code != 201:
                a.ks("PATCH", f"/users/{u['id']}", json={"user": {"password": password}})
        users[name] = u
        return u

    def grant(u, project, role):  # PUT is idempotent
        a.ks("PUT", f"/projects/{projects[project]['id']}/users/{u['id']}/roles/{roles[role]}")

    fc = user("fedcloud", env["REFSITE_PASSWORD"], "alpha-1")
    for name, _ in PROJECTS:
        grant(fc, name, "member")
        grant(fc, name, "reader")
    grant(user("alice", env["REFSITE_ALICE_PASSWORD"], "alpha-1"), "alpha-1", "member")
    grant(user("bob", env["REFSITE_BOB_PASSWORD"], "beta-1"), "beta-1", "member")
    out["REFSITE_USER_ID"] = fc["id"]

    # Application credential `appliance` of fedcloud, scoped to alpha-1. Only
    # the owner can create one, with a project-scoped token. The secret is
    # ours (kept in the base's passwords file), so it survives re-runs.
    secret = env["REFSITE_APPCRED_SECRET"]
    fca = Api(session("fedcloud", env["REFSITE_PASSWORD"], "alpha-1"))
    acs = fca.ks("GET", f"/users/{fc['id']}/application_credentials?name=appliance") \
        .json()["application_credentials"]
    ac = acs[0] if acs else None
    if ac is not None:
        r = a.s.post(f"{KS}/auth/tokens", authenticated=False, raise_exc=False, json={
            "auth": {"identity": {"methods": ["application_credential"],
                                  "application_credential": {"id": ac["id"], "secret": secret}}}})
        if r.status_code != 201:
            fca.ks("DELETE", f"/users/{fc['id']}/application_credentials/{ac['id']}")
            ac = None
    if ac is None:
        ac = fca.ks("POST", f"/users/{fc['id']}/application_credentials", json={
            "application_credential": {"name": "appliance", "secret": secret,
                                       "description": "fedcloud-appliance on the reference site"}
        }).json()["application_credential"]
    out["REFSITE_APPCRED_ID"] = ac["id"]
    return out, projects, roles


def seed_federation(a, projects, roles):
    """Keystone OIDC federation, the way EGI sites set it up behind
    mod_auth_openidc: identity provider `egi.eu` (remote id = the test issuer,
    read from HTTP_OIDC_ISS), protocol `openid`, and a mapping from
    HTTP_OIDC_SUB (ephemeral user) + HTTP_OIDC_GROUPS (VO names, `;`-separated:
    Keystone splits every assertion value on `;`) to one group per VO; each
    group has `member` on its VO's projects (alpha-1 / beta-1).

    The groups claim may arrive `;`-separated (what Keystone splits on, and
    EGI's recommended `OIDCClaimDelimiter ;`) or `,`-separated
    (mod_auth_openidc's default, what fedcloud-testsrv oidc sends): the VO
    rules match with a regex that accepts either."""
    issuer = env["REFSITE_OIDC_ISSUER"]
    doms = a.ks("GET", f"/domains?name={FED_DOMAIN}").json()["domains"]
    dom = doms[0] if doms else a.ks("POST", "/domains", json={"domain": {
        "name": FED_DOMAIN, "description": "users federated from egi.eu (OIDC)"}}).json()["domain"]
    groups = {g["name"]: g for g in a.ks("GET", f"/groups?domain_id={dom['id']}").json()["groups"]}
    for vo, project in ((VO_ALPHA, "alpha-1"), (VO_BETA, "beta-1")):
        if vo not in groups:
            groups[vo] = a.ks("POST", "/groups", json={"group": {
                "name": vo, "domain_id": dom["id"], "description": f"members of {vo} (OIDC)"}}).json()["group"]
        a.ks("PUT", f"/projects/{projects[project]['id']}/groups/{groups[vo]['id']}/roles/{roles['member']}")

    rules = [
        {"local": [{"user": {"name": "{0}", "type": "ephemeral"}}],
         "remote": [{"type": "HTTP_OIDC_SUB"}]},
    ] + [
        {"local": [{"group": {"name": vo, "domain": {"id": dom["id"]}}}],
         "remote": [{"type": "HTTP_OIDC_SUB"},
                    {"type": "HTTP_OIDC_GROUPS", "regex": True,
                     "any_one_of": ["(^|,)" + re.escape(vo) + "(,|$)"]}]}
        for vo in (VO_ALPHA, VO_BETA)
    ]
    r = a.ks("GET", f"/OS-FEDERATION/mappings/{MAPPING}", ok=(200, 404))
    if r.status_code == 404:
        a.ks("PUT", f"/OS-FEDERATION/mappings/{MAPPING}", json={"mapping": {"rules": rules}})
    elif r.json()["mapping"]["rules"] != rules:
        a.ks("PATCH", f"/OS-FEDERATION/mappings/{MAPPING}", json={"mapping": {"rules": rules}})

    idp = {"remote_ids": [issuer], "enabled": True,
           "description": "EGI Check-in stand-in (fedcloud-testsrv oidc)"}
    r = a.ks("GET", f"/OS-FEDERATION/identity_providers/{IDP}", ok=(200, 404))
    if r.status_code == 404:
        a.ks("PUT", f"/OS-FEDERATION/identity_providers/{IDP}", json={
            "identity_provider": dict(idp, domain_id=dom["id"])})
    elif r.json()["identity_provider"]["remote_ids"] != [issuer]:
        a.ks("PATCH", f"/OS-FEDERATION/identity_providers/{IDP}", json={"identity_provider": idp})

    proto = {"mapping_id": MAPPING, "remote_id_attribute": "HTTP_OIDC_ISS"}
    path = f"/OS-FEDERATION/identity_providers/{IDP}/protocols/{PROTOCOL}"
    r = a.ks("GET", path, ok=(200, 404))
    if r.status_code == 404:
        a.ks("PUT", path, json={"protocol": proto})
    elif any(r.json()["protocol"].get(k) != v for k, v in proto.items()):
        a.ks("PATCH", path, json={"protocol": proto})
    return {"REFSITE_OIDC_DOMAIN_ID": dom["id"]}


def cmd_bootstrap(out_file):
    a = admin()
    ready(a)
    t = time.time()
    out = seed_infra(a)
    ident, projects, roles = seed_identity(a)
    out.update(ident)
    out.update(seed_flavors(a, projects["alpha-1"]["id"]))
    seed_quotas(a, projects)
    out.update(seed_federation(a, projects, roles))
    with open(out_file + ".tmp", "w") as f:
        for k, v in sorted(out.items()):
            f.write(f"{k}={v}\n")
    os.replace(out_file + ".tmp", out_file)
    print(f"seeded in {time.time() - t:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"wal": lambda: cmd_wal(args),
     "neutron-schema": lambda: cmd_neutron_schema(args[0]),
     "catalog": cmd_catalog,
     "bootstrap": lambda: cmd_bootstrap(args[0])}[cmd]()
