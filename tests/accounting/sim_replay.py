"""Is the Nova/Keystone simulator faithful? (tests/accounting/sim_faithful.rs)

  sim_replay.py capture DIR FROM TO   read the reference site as the accounting
                                       extractors do; write DIR/dataset.json
                                       (the sim's Dataset) and DIR/answers.json
                                       (every request both extractors make,
                                       with the real answer)
  sim_replay.py replay DIR SIM_URL     ask the sim (started on dataset.json)
                                       the same requests; print the
                                       differences, exit 1 if any

Runs with $REFSITE_PYTHON (openstacksdk) and OS_CLIENT_CONFIG_FILE of the site.
Requests are those of `appliance accounting extract` (compute microversion
2.47) and of cASO 5.2.2's extractors (no microversion), per project, with the
`fedcloud` user's project-scoped token, as both extractors use. FROM and TO
(`YYYY-MM-DDTHH:MM:SSZ`) are the window.

Normalised before comparing (documented, deliberate):
  - scheme://host:port of every URL (the sim runs elsewhere);
  - the compute version document's `version` (maximum microversion: the
    site's Nova claims more than the sim implements; both serve 2.47);
  - os-simple-tenant-usage: `uptime` (now-relative), float hours rounded to
    1e-3 h (the sim computes them from the same timestamps).
"""
import json
import re
import sys
import urllib.parse
import urllib.request

MV = {"OpenStack-API-Version": "compute 2.47", "X-OpenStack-Nova-API-Version": "2.47"}
PROJECT_KEYS = ["REFSITE_PROJECT_ALPHA1_ID", "REFSITE_PROJECT_ALPHA2_ID", "REFSITE_PROJECT_BETA1_ID"]
CLOUDS = {"REFSITE_PROJECT_ALPHA1_ID": "refsite-fedcloud-alpha-1",
          "REFSITE_PROJECT_ALPHA2_ID": "refsite-fedcloud-alpha-2",
          "REFSITE_PROJECT_BETA1_ID": "refsite-fedcloud-beta-1"}


def caso_time(t):
    """cASO sends str() of a naive UTC datetime: `2024-05-01 10:00:00`."""
    return t.replace("T", " ").rstrip("Z")


def requests_of(project, window, seen):
    """(name, service, path, headers) of both extractors for one project.
    `seen` holds what earlier answers named (image, user, server ids)."""
    frm, to = window
    q = urllib.parse.urlencode
    out = [
        ("compute version", "compute", "", {}),
        ("appliance changed servers", "compute", "/servers/detail?" + q({"changes-since": frm, "limit": 200}), MV),
        ("appliance live servers", "compute", "/servers/detail?limit=200", MV),
        ("appliance volumes", "block-storage", "/volumes/detail?limit=200", {}),
        ("appliance floating ips", "network", "/v2.0/floatingips?" + q({"project_id": project, "limit": 200}), {}),
        ("project", "identity", f"/projects/{project}", {}),
        ("caso flavors", "compute", "/flavors/detail", {}),
        ("caso images", "image", "/v2/images?limit=20", {}),
        ("caso changed servers", "compute", "/servers/detail?" + q({"changes-since": caso_time(frm), "limit": 200}), {}),
        ("caso usage", "compute", f"/os-simple-tenant-usage/{project}?" + q({"start": caso_time(frm).replace(" ", "T"), "end": caso_time(to).replace(" ", "T")}), {}),
        ("caso floating ips", "network", "/v2.0/floatingips", {}),
    ]
    return out


def follow_ups(name, body):
    """Requests an answer leads to: images, users, flavor extra specs, servers."""
    out = []
    if name in ("appliance changed servers", "appliance live servers"):
        for s in body.get("servers", []):
            if isinstance(s.get("image"), dict):
                out.append(("image", "image", f"/v2/images/{s['image']['id']}", {}))
            out.append(("user", "identity", f"/users/{s['user_id']}", {}))
    if name == "appliance volumes":
        for v in body.get("volumes", []):
            if v.get("user_id"):
                out.append(("user", "identity", f"/users/{v['user_id']}", {}))
    if name == "caso flavors":
        for f in body.get("flavors", []):
            out.append(("caso extra specs", "compute", f"/flavors/{f['id']}/os-extra_specs", {}))
    if name == "caso usage":
        for u in body.get("tenant_usage", {}).get("server_usages", []):
            out.append(("caso server", "compute", f"/servers/{u['instance_id']}", {}))
    return out


def capture(outdir, frm, to):
    """Captures until two passes agree: other tests may change the site
    meanwhile, and the dataset must be what the answers were given from."""
    for attempt in range(5):
        first = capture_once(frm, to)
        second = capture_once(frm, to)
        if first["dataset"] == second["dataset"] and same_answers(first, second):
            break
    else:
        sys.exit("the site kept changing during 5 captures (other tests running?)")
    json.dump(second["dataset"], open(f"{outdir}/dataset.json", "w"), indent=1)
    json.dump({"window": [frm, to], "endpoints": second["endpoints"], "answers": second["answers"]},
              open(f"{outdir}/answers.json", "w"), indent=1)
    d = second["dataset"]
    print(json.dumps({"answers": len(second["answers"]), "attempts": attempt + 1,
                      "servers": sum(len(v) for v in d["servers"].values()),
                      "images": len(d["images"]), "users": len(d["users"]),
                      "flavors": len(d["flavors"]), "floatingips": len(d["floatingips"])}))


def same_answers(a, b):
    strip = lambda ans: [(x["path"], x["status"], normalise(x["name"], x["body"])) for x in ans["answers"]]
    return strip(a) == strip(b)


def capture_once(frm, to):
    import os

    import openstack
    window = (frm, to)
    admin = openstack.connect(cloud="refsite-admin")
    adm = admin.session
    dataset = {"projects": [], "users": [], "flavors": [], "images": [], "servers": {},
               "volumes": {}, "floatingips": [], "server_extras": {}, "flavor_access": {},
               "image_members": {}}
    answers = []
    users, images, fips = {}, {}, {}

    def get(sess, service, path, headers=None):
        r = sess.get(path, endpoint_filter={"service_type": service, "interface": "public",
                                            "region_name": "RegionOne"},
                     headers=headers or {}, raise_exc=False)
        try:
            return r.status_code, (r.json() if r.text.strip() else None)
        except ValueError:
            return r.status_code, r.text

    def all_pages(sess, service, path, key, headers=None):
        items, marker = [], None
        while True:
            p = path + ("&" if "?" in path else "?") + "limit=200" + (f"&marker={marker}" if marker else "")
            st, body = get(sess, service, p, headers)
            assert st == 200, (path, st, body)
            page = body[key]
            items += page
            if len(page) < 200:
                return items
            marker = page[-1]["id"]

    # Flavors (admin: every one, private ones with their access list).
    for f in all_pages(adm, "compute", "/flavors/detail?is_public=None", "flavors"):
        st, spec = get(adm, "compute", f"/flavors/{f['id']}/os-extra_specs")
        f = dict(f)
        f["extra_specs"] = spec["extra_specs"] if st == 200 else {}
        dataset["flavors"].append(f)
        if not f.get("os-flavor-access:is_public", True):
            st, acc = get(adm, "compute", f"/flavors/{f['id']}/os-flavor-access")
            dataset["flavor_access"][f["id"]] = [a["tenant_id"] for a in acc.get("flavor_access", [])]

    for key in PROJECT_KEYS:
        project = os.environ[key]
        conn = openstack.connect(cloud=CLOUDS[key])
        sess = conn.session
        st, p = get(adm, "identity", f"/projects/{project}")
        dataset["projects"].append(p["project"])
        # Every server Nova still knows (deleted ones through changes-since),
        # as 2.1 and as 2.47 (whose extra fields the sim adds back).
        since = "/servers/detail?changes-since=2000-01-01T00%3A00%3A00Z"
        v21 = all_pages(sess, "compute", since, "servers")
        v247 = {s["id"]: s for s in all_pages(sess, "compute", since, "servers", MV)}
        dataset["servers"][project] = v21
        for s in v21:
            s47 = v247[s["id"]]
            extra = {k: v for k, v in s47.items() if k not in s or k == "flavor"}
            dataset["server_extras"][s["id"]] = extra
        dataset["volumes"][project] = all_pages(sess, "block-storage", "/volumes/detail", "volumes")
        for f in all_pages(sess, "network", f"/v2.0/floatingips?project_id={project}", "floatingips"):
            fips[f["id"]] = f
        for img in all_pages_glance(sess, get):
            images[img["id"]] = img
        for s in v21:
            users[s["user_id"]] = None
        for v in dataset["volumes"][project]:
            if v.get("user_id"):
                users[v["user_id"]] = None

        queue = requests_of(project, window, None)
        done = set()
        while queue:
            name, service, path, headers = queue.pop(0)
            if (service, path, bool(headers)) in done:
                continue
            done.add((service, path, bool(headers)))
            st, body = get(sess, service, path, headers)
            answers.append({"project": project, "name": name, "service": service, "path": path,
                            "microversion": headers.get("OpenStack-API-Version"),
                            "status": st, "body": body})
            if st == 200 and body:
                queue += follow_ups(name, body)
    for uid in users:
        st, u = get(adm, "identity", f"/users/{uid}")
        if st == 200:
            dataset["users"].append(u["user"])
    dataset["images"] = list(images.values())
    dataset["image_members"] = {}
    for img in images.values():
        if img.get("visibility") == "shared":
            st, m = get(adm, "image", f"/v2/images/{img['id']}/members")
            if st == 200:
                dataset["image_members"][img["id"]] = {x["member_id"]: x["status"] for x in m["members"]}
    dataset["floatingips"] = list(fips.values())
    endpoints = {st: admin.session.get_endpoint(service_type=st, interface="public", region_name="RegionOne")
                 for st in ("compute", "image", "block-storage", "network", "identity")}
    return {"dataset": dataset, "answers": answers, "endpoints": endpoints}


def all_pages_glance(sess, get):
    out, path = [], "/v2/images?limit=100"
    while path:
        st, body = get(sess, "image", path)
        assert st == 200, (path, st, body)
        out += body["images"]
        path = body.get("next")
    return out


URL = re.compile(r"https?://[^/\s\"]+")


def normalise(name, body, *endpoints):
    """`endpoints`: service type -> endpoint URL maps of the side that
    answered; URLs under one become `<service>`, other hosts `http://HOST`."""
    prefixes = sorted(((u.rstrip("/"), f"<{t}>") for e in endpoints for t, u in e.items()),
                      key=lambda p: -len(p[0]))

    def url(s):
        for p, name in prefixes:
            if s.startswith(p):
                return name + s[len(p):]
        return URL.sub("http://HOST", s)

    def walk(v):
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, str):
            return url(v)
        return v
    body = walk(body)
    if name == "compute version" and isinstance(body, dict):
        body.get("version", {}).pop("version", None)
    if name == "caso usage" and isinstance(body, dict):
        tu = body.get("tenant_usage", {})
        for u in tu.get("server_usages", []):
            u.pop("uptime", None)
            u["hours"] = round(u.get("hours", 0), 3)
        for k in list(tu):
            if k.startswith("total_"):
                tu[k] = round(tu[k], 3)
    return body


def diff(a, b, path="$"):
    if type(a) is not type(b):
        return [f"{path}: real {json.dumps(a)[:200]} / sim {json.dumps(b)[:200]}"]
    if isinstance(a, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in a:
                out.append(f"{path}.{k}: only in the sim: {json.dumps(b[k])[:200]}")
            elif k not in b:
                out.append(f"{path}.{k}: missing in the sim (real {json.dumps(a[k])[:200]})")
            else:
                out += diff(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list):
        if len(a) != len(b):
            ids = lambda l: [x.get("id", x.get("instance_id")) if isinstance(x, dict) else x for x in l]
            return [f"{path}: real has {len(a)} items {ids(a)}, sim {len(b)} {ids(b)}"]
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += diff(x, y, f"{path}[{i}]")
        return out
    return [] if a == b else [f"{path}: real {json.dumps(a)[:200]} / sim {json.dumps(b)[:200]}"]


def replay(outdir, sim):
    recorded = json.load(open(f"{outdir}/answers.json"))
    tokens, catalogs = {}, {}

    def token(project):
        if project not in tokens:
            body = json.dumps({"auth": {"identity": {"methods": ["password"], "password": {"user": {
                "name": "fedcloud", "domain": {"id": "default"}, "password": "x"}}},
                "scope": {"project": {"id": project}}}}).encode()
            req = urllib.request.Request(sim.rstrip("/") + "/v3/auth/tokens", data=body,
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req) as r:
                tokens[project] = r.headers["X-Subject-Token"]
                cat = json.load(r)["token"]["catalog"]
                catalogs[project] = {e["type"]: e["endpoints"][0]["url"] for e in cat}
        return tokens[project], catalogs[project]

    problems, compared = [], 0
    for a in recorded["answers"]:
        tok, cat = token(a["project"])
        headers = {"X-Auth-Token": tok, "Accept": "application/json"}
        if a["microversion"]:
            headers.update(MV)
        req = urllib.request.Request(cat[a["service"]].rstrip("/") + a["path"], headers=headers)
        try:
            with urllib.request.urlopen(req) as r:
                st, text = r.status, r.read()
        except urllib.error.HTTPError as e:
            st, text = e.code, e.read()
        try:
            body = json.loads(text) if text.strip() else None
        except ValueError:
            body = text.decode(errors="replace")
        where = f"{a['name']}: {a['service']} {a['path']} (project {a['project'][:8]})"
        compared += 1
        if st != a["status"]:
            problems.append(f"{where}: status real {a['status']} / sim {st}")
            continue
        if st >= 400:
            continue  # error bodies: the status is the contract
        real = normalise(a["name"], a["body"], recorded["endpoints"])
        # The sim serves captured objects verbatim: their links name the site.
        for d in diff(real, normalise(a["name"], body, recorded["endpoints"], cat)):
            problems.append(f"{where}: {d}")
    for p in problems:
        print(p)
    print(json.dumps({"compared": compared, "differences": len(problems)}))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    if sys.argv[1] == "capture":
        capture(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        replay(sys.argv[2], sys.argv[3])
