"""VMs and a volume for the import-legacy continuity test (tests/legacy/continuity.rs).

  continuity.py boot NAME FLAVOR       boot a VM in alpha-1 (FLAVOR: tiny|gpu), print its id
  continuity.py delete ID              delete a VM of alpha-1, wait until it is gone
  continuity.py volume NAME            a 1 GiB volume in alpha-2, print its id
  continuity.py cleanup                delete {"servers": [...], "volumes": [...]} given on stdin

Runs with $REFSITE_PYTHON and the site's OS_CLIENT_CONFIG_FILE, as the
`fedcloud` user; the HTTP helpers (SQLite retries, waiting for builds) are
those of tests/accounting/refsite_setup.py.
"""
import importlib.util
import json
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "refsite_setup", os.path.join(_here, "..", "accounting", "refsite_setup.py"))
_argv, sys.argv = sys.argv, [sys.argv[0], "import", "continuity"]
rs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rs)
sys.argv = _argv


def boot(name, flavor):
    a1 = rs.Api("refsite-fedcloud-alpha-1")
    fl = os.environ["REFSITE_GPU_FLAVOR_ID" if flavor == "gpu" else "REFSITE_TINY_FLAVOR_ID"]
    print(rs.boot_active(a1, name, fl, os.environ["REFSITE_IMAGE_ID"],
                         os.environ["REFSITE_PRIVATE_NETWORK_ID"]))


def delete(sid):
    a1 = rs.Api("refsite-fedcloud-alpha-1")
    rs.delete_gone(a1, sid)


def volume(name):
    a2 = rs.Api("refsite-fedcloud-alpha-2")
    vol = a2("POST", "block-storage", "/volumes", json={"volume": {"size": 1, "name": name}}).json()["volume"]
    rs.wait("volume available", lambda: a2("GET", "block-storage", f"/volumes/{vol['id']}")
            .json()["volume"]["status"] in ("available", "error"))
    print(vol["id"])


def cleanup():
    made = json.load(sys.stdin)
    a1 = rs.Api("refsite-fedcloud-alpha-1")
    a2 = rs.Api("refsite-fedcloud-alpha-2")
    for sid in made.get("servers", []):
        a1("DELETE", "compute", f"/servers/{sid}", ok=(204, 404))
    for vid in made.get("volumes", []):
        a2("DELETE", "block-storage", f"/volumes/{vid}", ok=(202, 404, 400))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "boot":
        boot(sys.argv[2], sys.argv[3])
    elif cmd == "delete":
        delete(sys.argv[2])
    elif cmd == "volume":
        volume(sys.argv[2])
    else:
        cleanup()
