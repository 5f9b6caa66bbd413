"""Seed the reference site with something for the demo to see (idempotent).

Per VO project, as the appliance's service user: servers (one of them deleted
in alpha-1), a volume, floating IPs. Runs with the reference site's venv
python (openstacksdk); reads reference-site.env variables from the environment.
"""
import os
import sys
import time

import openstack


def retry(fn, *args, **kw):
    """SQLite behind the reference site's Nova/Cinder can answer 500
    ("database is locked") under concurrent writers: retry a few times."""
    for attempt in range(5):
        try:
            return fn(*args, **kw)
        except openstack.exceptions.HttpException as e:
            if getattr(e, "status_code", None) not in (500, 503) or attempt == 4:
                raise
            time.sleep(2 * (attempt + 1))


def conn(project_id):
    return openstack.connect(
        auth_url=os.environ["OS_AUTH_URL"],
        username=os.environ["REFSITE_USER"],
        password=os.environ["REFSITE_PASSWORD"],
        project_id=project_id,
        user_domain_id="default",
        region_name=os.environ.get("OS_REGION_NAME", "RegionOne"),
    )


def ensure_server(c, name, delete=False):
    if delete:
        # a deleted server is seen only once; keep exactly one per project
        admin = openstack.connect(
            auth_url=os.environ["OS_AUTH_URL"], username=os.environ["REFSITE_ADMIN_USER"],
            password=os.environ["REFSITE_ADMIN_PASSWORD"], project_name="admin",
            user_domain_id="default", project_domain_id="default",
            region_name=os.environ.get("OS_REGION_NAME", "RegionOne"))
        gone = [s for s in admin.compute.servers(all_projects=True, deleted=True, project_id=c.current_project_id)
                if s.name == name]
        if gone:
            return
    existing = [s for s in c.compute.servers() if s.name == name]
    if existing and not delete:
        return existing[0]
    image = next(i for i in c.image.images() if i.name == "test-image")
    flavor = c.compute.find_flavor("m1.tiny")
    net = c.network.find_network("private")
    s = retry(c.compute.create_server, name=name, image_id=image.id, flavor_id=flavor.id,
                                networks=[{"uuid": net.id}])
    s = c.compute.wait_for_server(s, wait=180)
    if delete:
        retry(c.compute.delete_server, s)
        c.compute.wait_for_delete(s, wait=180)
    return s


def ensure_volume(c, name):
    if not [v for v in c.block_storage.volumes() if v.name == name]:
        v = retry(c.block_storage.create_volume, name=name, size=1)
        c.block_storage.wait_for_status(v, status="available", wait=120)


def ensure_fip(c, server=None):
    pub = c.network.find_network("public")
    fips = list(c.network.ips(project_id=c.current_project_id))
    if fips:
        return
    fip = retry(c.network.create_ip, floating_network_id=pub.id)
    if server is not None:
        port = next(c.network.ports(device_id=server.id))
        c.network.update_ip(fip, port_id=port.id)


def main():
    a1 = conn(os.environ["REFSITE_PROJECT_ALPHA1_ID"])
    s = ensure_server(a1, "demo-alpha1-vm")
    ensure_server(a1, "demo-alpha1-deleted", delete=True)
    ensure_volume(a1, "demo-alpha1-vol")
    ensure_fip(a1, s)
    b1 = conn(os.environ["REFSITE_PROJECT_BETA1_ID"])
    ensure_server(b1, "demo-beta1-vm")
    ensure_fip(b1)
    a2 = conn(os.environ["REFSITE_PROJECT_ALPHA2_ID"])
    ensure_volume(a2, "demo-alpha2-vol")


if __name__ == "__main__":
    sys.exit(main())
