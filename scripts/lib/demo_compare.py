"""Print `appliance doctor --inventory --json` beside the openstack CLI.

Usage: demo_compare.py REPORT.json [APPLIANCE COMMAND...]: with a command,
run it (it writes the report), with the CLI's view taken just before and
after, so a site that changes meanwhile is noticed and looked at again.

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


def snapshot(projects):
    return {(p, res): osc(p, args) for p in projects for res, args in QUERIES.items()}


def main(path, *appliance_cmd):
    """Compare; when the site changed while we looked (another client was
    creating or deleting things), look again, up to three times."""
    for attempt in range(3):
        before = None
        if appliance_cmd:
            report = run_appliance(path, appliance_cmd)
            ids = [p["project"]["id"] for p in report["projects"] if p.get("ok")]
            before = snapshot(ids)
            report = run_appliance(path, appliance_cmd)
        report = json.load(open(path))
        ids = [p["project"]["id"] for p in report["projects"] if p.get("ok")]
        after = snapshot(ids)
        if before is None or before == after:
            return compare(report, after)
        print(f"the site changed while comparing (attempt {attempt + 1}); looking again", file=sys.stderr)
    return compare(report, after)


def run_appliance(path, cmd):
    with open(path, "w") as out:
        subprocess.run(list(cmd), stdout=out, check=True)
    return json.load(open(path))


def compare(report, theirs_all):
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
            theirs = theirs_all[(pid, res)]
            same = ours == theirs
            ok &= same
            print(f"{p['vo']:<18} {name:<10} {res:<13} {len(ours):>9} {len(theirs):>9}  {'yes' if same else 'NO'}")
            if not same:
                print(f"    only appliance: {sorted(ours - theirs)}  only openstack: {sorted(theirs - ours)}")
    print("all equal" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
