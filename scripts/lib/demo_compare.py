"""Print `appliance doctor --inventory --json` beside the openstack CLI.

For every project in the doctor report, run the real `openstack` CLI as the
same user in the same project and compare the ids of servers (deleted ones
included), images, flavors, volumes and floating IPs. Exit 1 on any mismatch.
"""
import json
import os
import subprocess
import sys

OSC = os.environ["REFSITE_OPENSTACK"]

# resource -> openstack CLI arguments listing the same set as appliance
QUERIES = {
    "servers": ["server", "list", "--changes-since", "1970-01-01T00:00:00Z"],
    "images": ["image", "list"],
    "flavors": ["flavor", "list", "--all"],
    "volumes": ["volume", "list"],
    "floating_ips": ["floating", "ip", "list"],
}


def osc(project_id, args):
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("OS_") and k not in ("OS_AUTH_URL", "OS_REGION_NAME", "OS_INTERFACE"):
            del env[k]
    env.update(OS_USERNAME=os.environ["REFSITE_USER"], OS_PASSWORD=os.environ["REFSITE_PASSWORD"],
               OS_PROJECT_ID=project_id, OS_USER_DOMAIN_ID="default", OS_IDENTITY_API_VERSION="3")
    extra = ["--project", project_id] if args[0] == "floating" else []
    out = subprocess.run([OSC, *args, *extra, "-f", "json", "-c", "ID"], env=env,
                         capture_output=True, text=True, check=True).stdout
    return {row["ID"] for row in json.loads(out)}


def main(path):
    report = json.load(open(path))
    ok = True
    header = f"{'VO':<18} {'project':<10} {'resource':<13} {'appliance':>9} {'openstack':>9}  same"
    print(header)
    print("-" * len(header))
    for p in report["projects"]:
        pid, name = p["project"]["id"], p["project"].get("name") or p["project"]["id"]
        if not p.get("ok"):
            print(f"{p['vo']:<18} {name:<10} ERROR: {p.get('error')}")
            ok = False
            continue
        for res, args in QUERIES.items():
            ours = {r["id"] for r in p["inventory"][res]}
            theirs = osc(pid, args)
            same = ours == theirs
            ok &= same
            print(f"{p['vo']:<18} {name:<10} {res:<13} {len(ours):>9} {len(theirs):>9}  {'yes' if same else 'NO'}")
            if not same:
                print(f"    only appliance: {sorted(ours - theirs)}  only openstack: {sorted(theirs - ours)}")
    print("all equal" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
