"""Accounting fixtures on the local reference site (tests/accounting/extract_refsite.rs).

  refsite_setup.py setup TAG     create, stop, delete servers etc.; print JSON
  refsite_setup.py cleanup TAG   delete what setup made (its JSON on stdin)

Runs with $REFSITE_PYTHON (openstacksdk) and OS_CLIENT_CONFIG_FILE of the site.
As the `fedcloud` user: alpha-1 gets an active VM on a private image carrying
an AppDB MPURI, a GPU VM, a stopped VM, a deleted VM, a VM with a non-ASCII
name containing `%%`, and a VM whose flavor (with benchmark extra specs) the
admin deletes afterwards; alpha-2 a VM and a 1 GiB volume without name;
beta-1 a VM with a floating IPv4 attached, and a floating IPv6 when Neutron
accepts one (the admin adds an IPv6 subnet to the external network).
"""
import json
import sys
import time

import openstack

TAG = sys.argv[2]
H = {"OpenStack-API-Version": "compute 2.47", "X-OpenStack-Nova-API-Version": "2.47"}


class Api:
    def __init__(self, cloud):
        self.conn = openstack.connect(cloud=cloud)
        self.s = self.conn.session

    def __call__(self, method, stype, path, ok=(200, 201, 202, 204), **kw):
        kw.setdefault("raise_exc", False)
        for attempt in range(6):
            r = self.s.request(path, method, endpoint_filter={
                "service_type": stype, "interface": "public", "region_name": "RegionOne"}, **kw)
            # SQLite behind the reference site's Nova/Cinder answers 500
            # ("database is locked", an OperationalError) under concurrent
            # writers; the transaction was rolled back, so trying again is
            # safe. A 409 on a retry means the first attempt did apply.
            if r.status_code == 500 and "OperationalError" in r.text and attempt < 5:
                time.sleep(1 + 2 * attempt)
                continue
            if r.status_code == 409 and attempt > 0:
                return r
            break
        if r.status_code not in ok:
            sys.exit(f"{method} {stype} {path}: HTTP {r.status_code}: {r.text[:400]}")
        return r


def wait(what, fn, timeout=180):
    t0 = time.time()
    while time.time() - t0 < timeout:
        v = fn()
        if v:
            return v
        time.sleep(0.5)
    sys.exit(f"timeout waiting for {what}")


def built(api, sid, timeout=60):
    """ACTIVE, ERROR, or STUCK when the build did not finish in time."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        st = (server(api, sid) or {}).get("status")
        if st in ("ACTIVE", "ERROR"):
            return st
        time.sleep(0.5)
    return "STUCK"


def server(api, sid):
    return api("GET", "compute", f"/servers/{sid}", headers=H, ok=(200, 404)).json().get("server")


def delete_gone(api, sid, timeout=240):
    """Deletes a server and waits until it is gone. On SQLite the compute
    service can lose a "database is locked" race while terminating and leave
    the server in ERROR (harness pitfall 5): delete it again then, and when
    nothing happens for 30 s."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        api("DELETE", "compute", f"/servers/{sid}", ok=(204, 404, 409))
        t1 = time.time()
        while time.time() - t1 < 30:
            s = server(api, sid)
            if s is None:
                return
            if s.get("status") == "ERROR" and not s.get("OS-EXT-STS:task_state"):
                break
            time.sleep(0.5)
        time.sleep(1)
    sys.exit(f"timeout waiting for server {sid} to be deleted")


def boot(api, name, flavor, image, net):
    s = api("POST", "compute", "/servers", json={"server": {
        "name": name, "flavorRef": flavor, "imageRef": image,
        "networks": [{"uuid": net}]}}).json()["server"]
    return s["id"]


def boot_active(api, name, flavor, image, net):
    """Boots a server and returns its id once ACTIVE. A build normally takes
    seconds; on SQLite the conductor can lose a "database is locked" race
    and leave the server in BUILD forever (harness pitfall 5), or it ends in
    ERROR: delete it and build again, four builds at most."""
    for _ in range(4):
        sid = boot(api, name, flavor, image, net)
        if built(api, sid) == "ACTIVE":
            return sid
        api("DELETE", "compute", f"/servers/{sid}", ok=(204, 404))
        time.sleep(2)
    sys.exit(f"{name}: no ACTIVE server after 4 builds")


def setup():
    import os
    adm = Api("refsite-admin")
    a1 = Api("refsite-fedcloud-alpha-1")
    a2 = Api("refsite-fedcloud-alpha-2")
    b1 = Api("refsite-fedcloud-beta-1")
    out = {"tag": TAG, "t0": time.time()}
    pub = os.environ["REFSITE_PUBLIC_NETWORK_ID"]
    priv = os.environ["REFSITE_PRIVATE_NETWORK_ID"]
    shared_image = os.environ["REFSITE_IMAGE_ID"]

    # admin: an IPv6 subnet on the external network (idempotent)
    subs = adm("GET", "network", f"/v2.0/subnets?network_id={pub}&ip_version=6").json()["subnets"]
    if not subs:
        adm("POST", "network", "/v2.0/subnets", json={"subnet": {
            "network_id": pub, "name": "public-v6", "ip_version": 6,
            "cidr": "2001:db8:100::/64", "enable_dhcp": False}})

    # admin: a flavor with benchmark extra specs, deleted after the boot
    fl = adm("POST", "compute", "/flavors", json={"flavor": {
        "name": f"acct-{TAG}", "vcpus": 2, "ram": 1024, "disk": 5,
        "OS-FLV-EXT-DATA:ephemeral": 1, "os-flavor-access:is_public": True}}).json()["flavor"]
    adm("POST", "compute", f"/flavors/{fl['id']}/os-extra_specs", json={"extra_specs": {
        "accounting:benchmark_type": "HEPscore23", "accounting:benchmark_value": "17.5"}})
    out["flavor_gone"] = fl["id"]

    # alpha-1: a private image with an AppDB MPURI
    img = a1("POST", "image", "/v2/images", json={
        "name": f"acct-{TAG}", "disk_format": "raw", "container_format": "bare",
        "visibility": "private",
        "vmcatcher_event_ad_mpuri": f"https://appdb.egi.eu/store/vo/image/acct-{TAG}:1/"}).json()
    a1("PUT", "image", f"/v2/images/{img['id']}/file", data=b"\0" * 4096,
       headers={"Content-Type": "application/octet-stream"})
    wait("image active", lambda: a1("GET", "image", f"/v2/images/{img['id']}").json()["status"] == "active")
    out["image"] = img["id"]
    out["mpuri"] = f"https://appdb.egi.eu/store/vo/image/acct-{TAG}:1/"

    tiny = os.environ["REFSITE_TINY_FLAVOR_ID"]
    gpu = os.environ["REFSITE_GPU_FLAVOR_ID"]
    # One at a time: Nova on SQLite fails concurrent builds ("database is locked").
    plan = [
        ("active", a1, f"acct-{TAG}-active", tiny, img["id"]),
        ("gpu", a1, f"acct-{TAG}-gpu", gpu, shared_image),
        ("stopped", a1, f"acct-{TAG}-stopped", tiny, shared_image),
        ("deleted", a1, f"acct-{TAG}-deleted", tiny, shared_image),
        ("unicode", a1, f"Caf\u00e9 \u00fcn\u00efcode %% {TAG}", tiny, shared_image),
        ("flavor_gone", a1, f"acct-{TAG}-flavor-gone", fl["id"], shared_image),
        ("alpha2", a2, f"acct-{TAG}-a2", tiny, shared_image),
        ("beta", b1, f"acct-{TAG}-b1", tiny, shared_image),
    ]
    ids = {}
    for key, api, name, flavor, image in plan:
        ids[key] = (api, boot_active(api, name, flavor, image, priv))
    adm("DELETE", "compute", f"/flavors/{fl['id']}")
    a1("POST", "compute", f"/servers/{ids['stopped'][1]}/action", json={"os-stop": None})
    wait("stopped SHUTOFF", lambda: server(a1, ids["stopped"][1])["status"] == "SHUTOFF")
    delete_gone(a1, ids["deleted"][1])

    # volume in alpha-2, no name
    vol = a2("POST", "block-storage", "/volumes", json={"volume": {"size": 1}}).json()["volume"]
    wait("volume available", lambda: a2("GET", "block-storage", f"/volumes/{vol['id']}")
         .json()["volume"]["status"] in ("available", "error"))
    out["volume"] = a2("GET", "block-storage", f"/volumes/{vol['id']}").json()["volume"]

    # beta-1: floating IPv4 on the VM; IPv6 if Neutron takes it
    port = wait("beta port", lambda: b1("GET", "network", f"/v2.0/ports?device_id={ids['beta'][1]}")
                .json()["ports"])[0]
    fip4 = b1("POST", "network", "/v2.0/floatingips", json={"floatingip": {
        "floating_network_id": pub, "port_id": port["id"]}}).json()["floatingip"]
    out["fips"] = [fip4]
    v6 = adm("GET", "network", f"/v2.0/subnets?network_id={pub}&ip_version=6").json()["subnets"][0]
    r = b1("POST", "network", "/v2.0/floatingips", ok=(201, 400, 409), json={"floatingip": {
        "floating_network_id": pub, "subnet_id": v6["id"]}})
    out["fip6_error"] = None if r.status_code == 201 else r.text[:300]
    if r.status_code == 201:
        out["fips"].append(r.json()["floatingip"])
    wait("beta floating address", lambda: any(
        a.get("OS-EXT-IPS:type") == "floating"
        for addrs in server(b1, ids["beta"][1])["addresses"].values() for a in addrs), timeout=60)

    # what Nova says now (deleted server through changes-since)
    out["servers"] = {}
    for key, (api, sid) in ids.items():
        s = server(api, sid)
        if s is None:
            lst = api("GET", "compute", "/servers/detail?changes-since=2000-01-01T00:00:00Z",
                      headers=H).json()["servers"]
            s = next(x for x in lst if x["id"] == sid)
        out["servers"][key] = s
    out["beta_fips_v4"] = sum(1 for f in adm("GET", "network", "/v2.0/floatingips?project_id="
                                          + os.environ["REFSITE_PROJECT_BETA1_ID"]).json()["floatingips"]
                              if ":" not in f["floating_ip_address"])
    out["t1"] = time.time()
    print(json.dumps(out))


def cleanup():
    """Deletes what `setup` made; its JSON output comes on stdin."""
    made = json.load(sys.stdin)
    apis = {"alpha1": Api("refsite-fedcloud-alpha-1"), "alpha2": Api("refsite-fedcloud-alpha-2"),
            "beta": Api("refsite-fedcloud-beta-1")}
    for f in made["fips"]:
        apis["beta"]("DELETE", "network", f"/v2.0/floatingips/{f['id']}", ok=(204, 404))
    for key, s in made["servers"].items():
        api = apis["alpha2"] if key == "alpha2" else apis["beta"] if key == "beta" else apis["alpha1"]
        api("DELETE", "compute", f"/servers/{s['id']}", ok=(204, 404))
    apis["alpha2"]("DELETE", "block-storage", f"/volumes/{made['volume']['id']}", ok=(202, 404, 400))
    apis["alpha1"]("DELETE", "image", f"/v2/images/{made['image']}", ok=(204, 404))


if __name__ == "__main__":
    {"setup": setup, "cleanup": cleanup}[sys.argv[1]]()
