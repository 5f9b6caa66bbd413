#!/usr/bin/env bash
# scripts/lib/demo_flows.sh: the flows of the demo cycle on the reference site
# (called by scripts/demo with reference-site.env loaded and $appliance set).
#
# Makes a signed HEPiX image list served by the site's file server (an
# endorser certificate from the site's test CA, a small qcow2 image) and
# the same image as an EGI VM image artifact in the site's registry (Harbor
# front, robot account, bearer tokens); configures the appliance with
# `appliance configure --answers` (its own root under $REFSITE_BASE/demo, so
# the tests' state is never touched); compares `doctor --inventory` with the
# openstack CLI; then runs images sync (both sources), accounting extract,
# accounting send, info publish, prints what each produced, and ends with
# `appliance status`.
set -euo pipefail
D=$REFSITE_BASE/demo
PKI=$REFSITE_BASE/pki
mkdir -p "$D" "$REFSITE_FILES_ROOT/demo"
log() { printf '[demo %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
dn() { openssl x509 -in "$1" -noout -"$2" -nameopt compat | sed 's/^[a-z]*=//; s/^ *//'; }

# --- a signed image list (created once) -----------------------------------
if [ ! -s "$D/endorser.pem" ]; then
  log "images: endorser certificate from the site's test CA"
  cat > "$D/endorser.cnf" <<'CNF'
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
[ v3_smime ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,nonRepudiation,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth,emailProtection
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
  ( umask 077; openssl req -new -newkey rsa:2048 -nodes -keyout "$D/endorser.key" -out "$D/endorser.csr" \
      -subj "/DC=org/DC=example/CN=appdb.refsite.example" -config "$D/endorser.cnf" 2>/dev/null )
  openssl x509 -req -in "$D/endorser.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca-work/ca.key" \
    -set_serial "0x$(openssl rand -hex 8)" -days 365 -sha256 -extfile "$D/endorser.cnf" \
    -extensions v3_smime -out "$D/endorser.pem" 2>/dev/null
  rm -f "$REFSITE_FILES_ROOT/demo/image.list"
fi
img=$REFSITE_FILES_ROOT/demo/demo-image.qcow2
if [ ! -s "$REFSITE_FILES_ROOT/demo/image.list" ]; then
  log "images: a small qcow2 image and its signed list"
  rm -f "$img"; qemu-img create -q -f qcow2 "$img" 64M
  size=$(stat -c %s "$img"); sum=$(sha512sum "$img" | cut -d' ' -f1)
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ); exp=$(date -u -d '+300 days' +%Y-%m-%dT%H:%M:%SZ)
  cat > "$D/list.json" <<JSON
{
  "hv:imagelist": {
    "dc:date:created": "$now",
    "dc:date:expires": "$exp",
    "dc:description": "Demo image list of the reference site",
    "dc:identifier": "6d3e2f0a-6b7e-4a35-9d9e-0c6f1c2a0d01",
    "dc:source": "$REFSITE_FILES_URL/demo/",
    "dc:title": "Reference site demo list",
    "ad:vo": "$REFSITE_VO_ALPHA",
    "hv:endorser": {"hv:x509": {"dc:creator": "Demo", "hv:ca": "$(dn "$PKI/ca.pem" subject)",
                                "hv:dn": "$(dn "$D/endorser.pem" subject)", "hv:email": "demo@refsite.example"}},
    "hv:images": [
      {"hv:image": {
        "dc:identifier": "0b2c8e3e-5f4d-4c1b-9a51-3f7f0d6c9e11",
        "dc:title": "Demo Linux [Debian/12/KVM]",
        "dc:description": "A 64 MiB empty qcow2 disk for the demo",
        "ad:mpuri": "https://appdb.refsite.example/store/vm/image/0b2c8e3e:1/",
        "hv:format": "QCOW2",
        "hv:size": "$size",
        "hv:uri": "$REFSITE_FILES_URL/demo/demo-image.qcow2",
        "hv:version": "1.0",
        "sl:checksum:sha512": "$sum",
        "sl:arch": "x86_64",
        "sl:os": "Linux",
        "sl:osname": "Debian",
        "sl:osversion": "12",
        "dc:date:expires": "$exp"
      }}
    ],
    "hv:uri": "$REFSITE_FILES_URL/demo/image.list",
    "hv:version": "$(date -u +%Y%m%d%H%M%S)"
  }
}
JSON
  openssl smime -sign -md sha256 -signer "$D/endorser.pem" -inkey "$D/endorser.key" \
    -in "$D/list.json" -out "$REFSITE_FILES_ROOT/demo/image.list"
fi

# --- the same image in the site's registry (Harbor, like registry.egi.eu) --
log "images: pushing the demo image to the registry as egi_vm_images/demo-debian:12"
"$REFSITE_TESTSRV_BIN" oci-push --registry "$REFSITE_REGISTRY_URL" \
  --token-service "$REFSITE_HARBOR_TOKEN_URL" --user "$REFSITE_HARBOR_ROBOT" \
  --password-file "$REFSITE_HARBOR_PASSWORD_FILE" \
  --repo egi_vm_images/demo-debian --tag 12 --file "$img" \
  --annotation eu.egi.cloud.tag=12 \
  --annotation "eu.egi.cloud.description=Demo Debian 12 from the site's registry" \
  --annotation org.openstack.glance.os_distro=debian \
  --annotation org.openstack.glance.os_version=12 \
  --annotation org.openstack.glance.architecture=x86_64 >/dev/null

# --- the demo configuration: `appliance configure --answers` --------------
# The appliance is configured the way a site administrator would (or first
# boot from user data): an answers file, checked live section by section
# (GOCDB, Keystone, projects, host certificate, CA directory, AMS, the signed
# list's signature, the registry's robot account) before anything is
# written. Its own root under $D/root keeps the tests' state untouched; the
# configuration is written afresh on every demo run, the state is kept.
R=$D/root
CONF=$R/etc/fedcloud-appliance/appliance.yaml
rm -rf "$R/etc/fedcloud-appliance"
( umask 077
  cat > "$D/answers.yaml" <<YAML
#appliance-config
site:
  name: $REFSITE_SITE_NAME
  endpoint: $REFSITE_KEYSTONE_URL
  gocdb-url: $REFSITE_GOCDB_URL/gocdbpi/public/
keystone:
  auth-type: password
  username: $REFSITE_USER
  password: "$REFSITE_PASSWORD"
  project: alpha-1
vos:
  - name: $REFSITE_VO_ALPHA
    projects: [alpha-1, alpha-2]
  - name: $REFSITE_VO_BETA
    projects: [beta-1]
components:
  crl-refresh: false    # the site's test CA publishes its CRL with no URL to fetch it from
host-certificate:
  certificate: $REFSITE_HOST_CERT
  key: $REFSITE_HOST_KEY
trust-anchors:
  ca-dir: $REFSITE_CA_DIR
ams:
  host: 127.0.0.1
  port: ${REFSITE_AMS_URL##*:}
  authn-port: ${REFSITE_AMS_URL##*:}
info:
  publish-file: $D/cloud-info.json
  swift-container: cloud-info
images:
  lists:
    - name: refsite-demo
      url: $REFSITE_FILES_URL/demo/image.list
      endorser-dn: "$(dn "$D/endorser.pem" subject)"
      endorser-ca: "$(dn "$PKI/ca.pem" subject)"
      vos: [$REFSITE_VO_ALPHA, $REFSITE_VO_BETA]
  registries:
    - name: registry-demo
      url: $REFSITE_HARBOR_URL
      projects: [egi_vm_images]
      robot: $REFSITE_HARBOR_ROBOT
      password: "$(head -1 "$REFSITE_HARBOR_PASSWORD_FILE")"
      vos: [$REFSITE_VO_ALPHA]
image-data:
  directory: $R/image_data
YAML
)
log "configure --answers (every answer checked live before it is saved)"
"$appliance" --config "$CONF" configure --root "$R" --answers "$D/answers.yaml" > "$D/configure.log" 2>&1 \
  || { tail -20 "$D/configure.log" >&2; exit 1; }
grep -E '^(configure:|wrote|timers enabled|configured:)' "$D/configure.log" | sed 's/^/  /' >&2
# What a site would add by hand to the written file (configure keeps such
# keys when it is run again): the demo's own Glance tag and registry filter,
# so the tests' images are never touched, and a short first window.
python3 - "$CONF" <<'PY'
import sys
p = sys.argv[1]
t = open(p).read()
t = t.replace("\nimages:\n", "\nimages:\n  tag: fedcloud-appliance-demo\n", 1)
t = t.replace("      type: harbor\n", "      type: harbor\n      repository: \"demo-.*\"\n      prefix: \"registry \"\n", 1)
t += "\n# Added by the demo.\naccounting:\n  first-run: 7d\n"
open(p, "w").write(t)
PY
A=("$appliance" --config "$CONF")
"${A[@]}" config check >/dev/null

log "appliance doctor --inventory, beside the openstack CLI"
"$REFSITE_PYTHON" scripts/lib/demo_compare.py "$D/demo-doctor.json" \
  "${A[@]}" --json doctor --inventory

run() {  # label, appliance args...: run, keep its --json report, tolerate exit 1 (partial)
  local label=$1; shift
  local rc=0
  "${A[@]}" --json "$@" > "$D/$label.json" 2> "$D/$label.log" || rc=$?
  if [ $rc -gt 1 ]; then log "$label FAILED (exit $rc); see $D/$label.log"; tail -5 "$D/$label.log" >&2; return $rc; fi
  log "$label: exit $rc"
}

run images-sync images sync
run accounting-extract accounting extract
run accounting-send accounting send
run info-publish info publish

"$REFSITE_PYTHON" - "$D" <<'PY'
import json, os, sys
d = sys.argv[1]
def load(name):
    try:
        return json.load(open(os.path.join(d, name + ".json")))
    except Exception as e:
        return {"error": str(e)}
print("\nflows on the reference site")
print("---------------------------")
sync = load("images-sync")
for src in sync.get("sources", []):
    def short(a):  # registry refs: <repo>:<tag>; list identifiers: 8 characters
        return a.split("/", 1)[1].split("-sha256:")[0] if "/" in a else a[:8]
    acts = ", ".join(f"{i.get('action')} {short(i.get('appdb_id', ''))}{'' if i.get('ok') else ' FAILED'}"
                     for i in src.get("images", [])) or "nothing to do"
    print(f"images sync         : {src.get('name')}: {src.get('status')}; {acts}")
ext = load("accounting-extract")
for p in ext.get("projects", []):
    recs = p.get("records")
    recs = ", ".join(f"{k} {v}" for k, v in recs.items()) if isinstance(recs, dict) else recs
    print(f"accounting extract  : {p.get('name')} ({p.get('vo')}): {'ok' if p.get('ok') else 'FAILED ' + str(p.get('error'))}; "
          f"records {recs}; messages {p.get('messages')}; lastrun advanced {p.get('lastrun_advanced')}")
snd = load("accounting-send")
print(f"accounting send     : found {snd.get('found')}, sent {snd.get('sent')} ({snd.get('bytes_sent')} bytes, signed by {snd.get('signer_dn')}), "
      f"quarantined {len(snd.get('quarantined') or [])}")
pub = load("info-publish")
for t in pub.get("targets", []):
    print(f"info publish        : {t.get('kind')}: {t.get('location')} {'ok' if t.get('ok') else 'FAILED ' + str(t.get('error'))}")
doc = os.path.join(d, "cloud-info.json")
if os.path.exists(doc):
    g = json.load(open(doc))
    print(f"GLUE document       : {os.path.getsize(doc)} bytes, {len(g.get('CloudComputingImage', []))} images, "
          f"{len(g.get('CloudComputingInstanceType', []))} instance types, "
          f"{len(g.get('Share', []))} shares")
ams = os.environ.get("REFSITE_AMS_STATE_DIR", "")
if ams and os.path.isdir(os.path.join(ams, "messages")):
    print(f"AMS test server     : {len(os.listdir(os.path.join(ams, 'messages')))} messages stored")
PY

echo
log "appliance status (what a site administrator sees after the cycle)"
rc=0; "${A[@]}" status || rc=$?
log "status: exit $rc (0 healthy, 1 warnings, 3 errors)"
[ $rc -le 1 ]
