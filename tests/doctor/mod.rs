//! Integration tests: `appliance doctor` (issue #11 point 4) against the
//! real Keystone, Nova, Glance, Cinder and Neutron of the reference site,
//! its test AMS (authx509 with the site's host certificate) and GOCDB,
//! plus a GOCDB of the test's own that registers the host DN. Each injected
//! fault is reported with its remedy: a wrong password, a missing role (a
//! user and projects of this test's own, `serial_`), an expired
//! certificate, AMS down, a clock 10 minutes off (the fault proxy's `Date`
//! rewrite in front of Keystone) and a host DN unknown to GOCDB. The JSON
//! is checked against `docs/doctor-json.md`.

use std::path::{Path, PathBuf};

use fedcloud_appliance::testsrv::fault_proxy::{self, Fault};
use fedcloud_appliance::testsrv::gocdb::{self, GocdbServer, GocdbService};
use serde_json::Value;

use crate::util::{appliance, refsite, serve_on_loopback};

fn var(k: &str) -> String {
    refsite().var(k).to_string()
}

/// What a test's configuration says.
#[derive(Clone)]
struct Setup {
    auth_url: String,
    username: String,
    password: String,
    /// The site credential's project (empty: none, an unscoped token).
    project: String,
    vos: String,
    host_cert: PathBuf,
    host_key: PathBuf,
    ams_port: u16,
    gocdb_url: String,
    /// The VOs the image subscription shares with.
    subscription_vos: String,
    /// `openstack.insecure: true` (a configuration warning).
    insecure: bool,
    /// The image list's URL (never fetched by doctor).
    list_url: String,
    /// Environment of the run (e.g. proxies).
    env: Vec<(&'static str, String)>,
}

impl Setup {
    /// The reference site as the `fedcloud` user sees it, the site's AMS,
    /// and `gocdb_url`.
    fn site(gocdb_url: String) -> Setup {
        Setup {
            auth_url: var("REFSITE_KEYSTONE_URL"),
            username: var("REFSITE_USER"),
            password: var("REFSITE_PASSWORD"),
            project: "alpha-1".into(),
            vos: format!(
                "  - name: {a}\n    projects:\n      - id: {p1}\n      - id: {p2}\n  - name: {b}\n    projects:\n      - name: beta-1\n        domain-name: Default\n",
                a = var("REFSITE_VO_ALPHA"),
                b = var("REFSITE_VO_BETA"),
                p1 = var("REFSITE_PROJECT_ALPHA1_ID"),
                p2 = var("REFSITE_PROJECT_ALPHA2_ID"),
            ),
            host_cert: refsite().path("REFSITE_HOST_CERT"),
            host_key: refsite().path("REFSITE_HOST_KEY"),
            ams_port: url::Url::parse(&var("REFSITE_AMS_URL"))
                .unwrap()
                .port()
                .unwrap(),
            gocdb_url,
            subscription_vos: format!("{}, {}", var("REFSITE_VO_ALPHA"), var("REFSITE_VO_BETA")),
            insecure: false,
            list_url: "https://127.0.0.1:9/none.list".into(),
            env: Vec::new(),
        }
    }

    /// Write this set-up's `appliance.yaml` (returned) and secrets file
    /// into `d`.
    fn write_config(&self, d: &Path) -> PathBuf {
        let yaml = format!(
            "schema-version: 2
site:
  gocdb: {site}
  endpoint: {endpoint}
openstack:
  auth:
    type: password
    auth-url: {auth_url}
    username: {user}
    user-domain-name: Default
{project}  region: RegionOne
  ca-dir: {ca}
  insecure: {insecure}
  timeout-seconds: 30
  retries: 1
secrets-file: {d}/secrets.yaml
vos:
{vos}paths:
  image-data: {d}/image-data
  spool: {d}/spool
  state: {d}/state
  host-cert: {cert}
  host-key: {key}
  ca-dir: {ca}
ams:
  host: localhost
  port: {ams}
  authn-port: {ams}
  timeout-seconds: 5
  retries: 0
  backoff-seconds: 0
info:
  gocdb-url: {gocdb}
images:
  subscriptions:
    - name: doctor-list
      url: {list_url}
      vos: [{sv}]
      endorser:
        dn: /DC=EU/DC=EGI/CN=endorser
        ca: /DC=ORG/DC=TEST/CN=CA
",
            site = var("REFSITE_SITE_NAME"),
            endpoint = var("REFSITE_KEYSTONE_URL"),
            auth_url = self.auth_url,
            user = self.username,
            project = if self.project.is_empty() {
                String::new()
            } else {
                format!(
                    "    project-name: {}\n    project-domain-name: Default\n",
                    self.project
                )
            },
            ca = var("REFSITE_CA_DIR"),
            d = d.display(),
            vos = self.vos,
            cert = self.host_cert.display(),
            key = self.host_key.display(),
            ams = self.ams_port,
            gocdb = self.gocdb_url,
            sv = self.subscription_vos,
            insecure = self.insecure,
            list_url = self.list_url,
        );
        let config = d.join("appliance.yaml");
        std::fs::write(&config, yaml).unwrap();
        crate::messaging::write_private(
            &d.join("secrets.yaml"),
            format!("openstack:\n  password: {}\n", self.password).as_bytes(),
        );
        config
    }

    /// Run `appliance ARGS` with this set-up's configuration and
    /// environment (and none of the test runner's proxies); the password
    /// is never printed.
    fn run(&self, args: &[&str]) -> std::process::Output {
        let dir = tempfile::tempdir().unwrap();
        let config = self.write_config(dir.path());
        let mut cmd = appliance();
        for k in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"] {
            cmd.env_remove(k).env_remove(k.to_lowercase());
        }
        let out = cmd
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap();
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains(&self.password)
                && !String::from_utf8_lossy(&out.stderr).contains(&self.password),
            "the password must never be printed"
        );
        out
    }

    /// Run `appliance --json doctor ARGS`: exit code and report.
    fn doctor(&self, args: &[&str]) -> (i32, Value) {
        let args: Vec<&str> = ["--json", "doctor"].iter().chain(args).copied().collect();
        let out = self.run(&args);
        let v = crate::util::stdout_json(&out, "doctor --json");
        (out.status.code().unwrap_or(-1), v)
    }
}

/// A GOCDB of the test's own: the reference site's Keystone endpoint, and
/// both services carrying the site's host DN.
fn registered_gocdb() -> (GocdbServer, String) {
    let dn = var("REFSITE_HOST_DN");
    let mut nova = GocdbService::nova(
        &var("REFSITE_SITE_NAME"),
        &var("REFSITE_KEYSTONE_URL"),
        &var("REFSITE_ENDPOINT_ID"),
    );
    nova.host_dn = Some(dn.clone());
    let acc = GocdbService::accounting(&var("REFSITE_SITE_NAME"), "77G0", &dn);
    let srv = serve_on_loopback(|l| gocdb::serve(l, vec![nova, acc]).unwrap());
    let url = format!("http://{}/gocdbpi/public/", srv.server.addr());
    (srv, url)
}

/// A GOCDB of the test's own where the site registered its Keystone
/// endpoint but no Host DN (the reference site's own GOCDB has both).
fn unregistered_gocdb() -> (GocdbServer, String) {
    let nova = GocdbService::nova(
        &var("REFSITE_SITE_NAME"),
        &var("REFSITE_KEYSTONE_URL"),
        &var("REFSITE_ENDPOINT_ID"),
    );
    let srv = serve_on_loopback(|l| gocdb::serve(l, vec![nova]).unwrap());
    let url = format!("http://{}/gocdbpi/public/", srv.server.addr());
    (srv, url)
}

/// The checks with `id` (and, when given, whose subject contains `subject`).
fn checks<'a>(r: &'a Value, id: &str) -> Vec<&'a Value> {
    r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == id)
        .collect()
}

fn one<'a>(r: &'a Value, id: &str) -> &'a Value {
    let c = checks(r, id);
    assert_eq!(c.len(), 1, "one `{id}` check expected in {r:#}");
    c[0]
}

/// `id` failed, its message has `seen` and its remedy `fix`.
fn failed_with(r: &Value, id: &str, seen: &str, fix: &str) {
    let c = checks(r, id);
    assert!(
        c.iter().any(|c| c["status"] == "failed"
            && c["message"].as_str().unwrap().contains(seen)
            && c["remedy"].as_str().unwrap_or_default().contains(fix)),
        "`{id}` should fail with `{seen}` and remedy `{fix}`: {c:#?}"
    );
}

/// On a well set up site every check passes (reading other users is only
/// a warning: the site's user is no admin), and the probes that write to
/// Glance change nothing.
#[test]
fn doctor_passes_on_a_well_set_up_site() {
    let (_gocdb, url) = registered_gocdb();
    let (code, r) = Setup::site(url).doctor(&[]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["summary"]["failed"], 0, "{r:#}");
    for c in r["checks"].as_array().unwrap() {
        let ok = c["status"] == "ok" || c["id"] == "roles.accounting.users";
        assert!(ok, "unexpected: {c:#}");
    }
    for id in [
        "network.proxy",
        "keystone.auth",
        "keystone.clock",
        "certificate.host",
        "ams.token",
        "ams.topic",
        "gocdb.endpoint",
        "gocdb.host-dn",
        "crl.freshness",
        "roles.images.create",
        "roles.images.upload",
        "roles.images.share",
    ] {
        assert_eq!(one(&r, id)["status"], "ok", "{id}: {r:#}");
    }
    assert!(one(&r, "roles.images.create")["message"]
        .as_str()
        .unwrap()
        .contains("409"));
    assert_eq!(checks(&r, "keystone.project").len(), 3);
    assert_eq!(checks(&r, "roles.accounting.servers").len(), 3);
    assert_eq!(checks(&r, "roles.images.accept").len(), 3);
    assert!(one(&r, "ams.token")["message"]
        .as_str()
        .unwrap()
        .contains(&var("REFSITE_HOST_DN")));
    // The probe image id is the site's public image: still there, still active.
    let (_, inv) = Setup::site(String::new()).doctor(&[
        "--inventory",
        "--project",
        &var("REFSITE_PROJECT_ALPHA1_ID"),
    ]);
    let images = &inv["projects"][0]["inventory"]["images"];
    let img = images
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == var("REFSITE_IMAGE_ID").as_str())
        .unwrap_or_else(|| panic!("{inv:#}"));
    assert_eq!(img["status"], "active");
}

/// The faults of the issue, each with its remedy, and the JSON schema.
#[test]
fn doctor_reports_each_injected_fault_with_its_remedy() {
    // 1. Keystone's clock 10 minutes ahead (through the fault proxy), AMS
    //    down (nothing listens on its port), and a GOCDB without the
    //    site's Host DN.
    let keystone = url::Url::parse(&var("REFSITE_KEYSTONE_URL")).unwrap();
    let upstream = url::Url::parse(&format!(
        "http://{}:{}/",
        keystone.host_str().unwrap(),
        keystone.port().unwrap()
    ))
    .unwrap();
    let (proxy, faults) = fault_proxy::spawn(upstream);
    faults.push(Fault::date_offset(600).times(10_000));
    let (_gocdb, gocdb_url) = unregistered_gocdb();
    let mut s = Setup::site(gocdb_url);
    s.auth_url = format!("http://{proxy}/v3");
    s.ams_port = crate::messaging::closed_port();
    let (code, faulty) = s.doctor(&[]);
    assert_eq!(code, 1, "{faulty:#}");
    failed_with(
        &faulty,
        "keystone.clock",
        "behind Keystone's",
        "timedatectl set-ntp",
    );
    let msg = one(&faulty, "keystone.clock")["message"].as_str().unwrap();
    assert!(
        msg.contains("is 9 min 5") || msg.contains("is 10 min 0"),
        "about 10 minutes: {msg}"
    );
    failed_with(
        &faulty,
        "ams.token",
        "AMS unavailable",
        "AMS is down or unreachable",
    );
    failed_with(
        &faulty,
        "gocdb.host-dn",
        "is unknown to GOCDB",
        &format!(
            "set the Host DN of the site's eu.egi.cloud.accounting service to exactly `{}`",
            var("REFSITE_HOST_DN")
        ),
    );
    assert_eq!(one(&faulty, "gocdb.endpoint")["status"], "ok", "{faulty:#}");
    assert_eq!(one(&faulty, "keystone.auth")["status"], "ok");

    // 2. An expired host certificate.
    let expired = &crate::testsrv::pki::Pki::shared().expired_client;
    let mut s = Setup::site(format!("{}/gocdbpi/public/", var("REFSITE_GOCDB_URL")));
    s.host_cert = expired.cert_path.clone();
    s.host_key = expired.key_path.clone();
    let (code, old_cert) = s.doctor(&[]);
    assert_eq!(code, 1, "{old_cert:#}");
    failed_with(
        &old_cert,
        "certificate.host",
        "within 24 hours",
        "renew the host certificate",
    );

    // 3. A wrong password: nothing works, exit 3, the remedy names the file.
    let mut wrong = Setup::site(format!("{}/gocdbpi/public/", var("REFSITE_GOCDB_URL")));
    wrong.password = "not-the-password-4d1f".into();
    wrong.insecure = true;
    let (code, refused) = wrong.doctor(&[]);
    assert_eq!(code, 3, "{refused:#}");
    failed_with(&refused, "keystone.auth", "401", "secrets.yaml");
    assert!(refused["accessible"]["error"].is_string());
    assert!(refused["projects"][0]["error"].is_string());
    assert_eq!(checks(&refused, "config.warning")[0]["status"], "warning");

    // 4. A proxy that does not answer, for the one remote host not in
    //    NO_PROXY (an image list), whose name does not resolve here.
    let mut s = Setup::site(format!("{}/gocdbpi/public/", var("REFSITE_GOCDB_URL")));
    let dead = crate::messaging::closed_port();
    s.list_url = "https://lists.appliance-test.invalid/vo.list".into();
    s.env = vec![
        ("HTTPS_PROXY", format!("http://127.0.0.1:{dead}")),
        ("NO_PROXY", "127.0.0.1,localhost".into()),
    ];
    let (code, proxied) = s.doctor(&[]);
    assert_eq!(code, 1, "{proxied:#}");
    failed_with(&proxied, "network.proxy", "refuses connections", "NO_PROXY");
    let p = one(&proxied, "network.proxy")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        p.contains("image list doctor-list via http://127.0.0.1:")
            && p.contains("direct: keystone"),
        "{p}"
    );
    let dns = checks(&proxied, "network.dns");
    let list_host = dns
        .iter()
        .find(|c| c["subject"] == "lists.appliance-test.invalid")
        .unwrap_or_else(|| panic!("{dns:#?}"));
    assert_eq!(
        list_host["status"], "warning",
        "resolved by the proxy: {list_host:#}"
    );
    assert_eq!(one(&proxied, "keystone.auth")["status"], "ok");

    // The human screen says the same.
    let out = wrong.run(&["doctor"]);
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(
        screen.contains("FAIL  keystone.auth") && screen.contains("remedy:"),
        "{screen}"
    );

    // The schema, with an inventory too.
    let (_, inv) = Setup::site(String::new()).doctor(&[
        "--inventory",
        "--project",
        &var("REFSITE_PROJECT_ALPHA2_ID"),
    ]);
    // A fresh reference site's project has no volume or floating IP yet.
    crate::util::schema::check_allowing_empty(
        "docs/doctor-json.md",
        &[&faulty, &old_cert, &refused, &proxied, &inv],
        &[
            "projects[].inventory.volumes[]",
            "projects[].inventory.floating_ips[]",
        ],
    );
}

/// Keystone as the reference site's admin, for the test's own user and
/// projects (created once, idempotently; other tests never see them).
mod admin {
    use serde_json::{json, Value};

    use super::var;

    pub struct Admin {
        c: reqwest::Client,
        token: String,
        base: String,
    }

    impl Admin {
        /// The reference site's admin, in project `admin`.
        pub async fn login() -> Admin {
            Self::with_password(
                &var("REFSITE_ADMIN_USER"),
                &var("REFSITE_ADMIN_PASSWORD"),
                json!({"project": {"name": "admin", "domain": {"id": "default"}}}),
            )
            .await
        }

        /// User `name` of the default domain with `scope`.
        async fn with_password(name: &str, password: &str, scope: Value) -> Admin {
            let c = reqwest::Client::new();
            let base = var("REFSITE_KEYSTONE_URL");
            let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
                "name": name, "domain": {"id": "default"}, "password": password}}},
                "scope": scope}});
            let r = c
                .post(format!("{base}/auth/tokens"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201, "login as {name}");
            let token = r.headers()["x-subject-token"].to_str().unwrap().to_string();
            Admin { c, token, base }
        }

        async fn call(
            &self,
            method: reqwest::Method,
            path: &str,
            body: Option<Value>,
        ) -> (u16, Value) {
            let mut rb = self
                .c
                .request(method, format!("{}/{path}", self.base))
                .header("X-Auth-Token", &self.token);
            if let Some(b) = body {
                rb = rb.json(&b);
            }
            let r = rb.send().await.unwrap();
            let status = r.status().as_u16();
            let v = r.json().await.unwrap_or(Value::Null);
            (status, v)
        }

        /// The id of project `name` (created when missing).
        pub async fn project(&self, name: &str) -> String {
            let (_, v) = self
                .call(
                    reqwest::Method::GET,
                    &format!("projects?name={name}&domain_id=default"),
                    None,
                )
                .await;
            if let Some(id) = v["projects"][0]["id"].as_str() {
                return id.to_string();
            }
            let (st, v) = self
                .call(
                    reqwest::Method::POST,
                    "projects",
                    Some(json!({"project": {"name": name, "domain_id": "default",
                        "description": "doctor tests (tests/doctor)"}})),
                )
                .await;
            assert_eq!(st, 201, "{v}");
            v["project"]["id"].as_str().unwrap().to_string()
        }

        /// The id of user `name` with `password` (created or reset).
        pub async fn user(&self, name: &str, password: &str) -> String {
            let (_, v) = self
                .call(
                    reqwest::Method::GET,
                    &format!("users?name={name}&domain_id=default"),
                    None,
                )
                .await;
            if let Some(id) = v["users"][0]["id"].as_str() {
                let (st, v) = self
                    .call(
                        reqwest::Method::PATCH,
                        &format!("users/{id}"),
                        Some(json!({"user": {"password": password}})),
                    )
                    .await;
                assert_eq!(st, 200, "{v}");
                return id.to_string();
            }
            let (st, v) = self
                .call(
                    reqwest::Method::POST,
                    "users",
                    Some(json!({"user": {"name": name, "password": password, "domain_id": "default"}})),
                )
                .await;
            assert_eq!(st, 201, "{v}");
            v["user"]["id"].as_str().unwrap().to_string()
        }

        /// A token of user `name` scoped to `project`: a client as it.
        pub async fn as_user(name: &str, password: &str, project: &str) -> Admin {
            Self::with_password(name, password, json!({"project": {"id": project}})).await
        }

        /// A Glance call (`path` under the image endpoint's `/v2/`).
        pub async fn glance(
            &self,
            method: reqwest::Method,
            path: &str,
            body: Option<Value>,
            raw: Option<&'static [u8]>,
        ) -> (u16, Value) {
            let url = format!("{}/v2/{path}", var("REFSITE_GLANCE_URL"));
            let mut rb = self
                .c
                .request(method, url)
                .header("X-Auth-Token", &self.token);
            if let Some(b) = body {
                rb = rb.json(&b);
            }
            if let Some(r) = raw {
                rb = rb
                    .header("Content-Type", "application/octet-stream")
                    .body(r);
            }
            let r = rb.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or(Value::Null))
        }

        pub async fn role(&self, name: &str) -> String {
            let (_, v) = self
                .call(reqwest::Method::GET, &format!("roles?name={name}"), None)
                .await;
            v["roles"][0]["id"].as_str().unwrap().to_string()
        }

        /// Grant (`true`) or revoke a role; both idempotent.
        pub async fn set_role(&self, project: &str, user: &str, role: &str, granted: bool) {
            let method = if granted {
                reqwest::Method::PUT
            } else {
                reqwest::Method::DELETE
            };
            let (st, v) = self
                .call(
                    method,
                    &format!("projects/{project}/users/{user}/roles/{role}"),
                    None,
                )
                .await;
            assert!(st == 204 || (!granted && st == 404), "{st} {v}");
        }
    }
}

/// A user of the test's own with `member` on one project and only
/// `reader` on the other (its default scope, the images owner): image
/// creation and accepting shared images fail there with the command that
/// grants the role; listing servers works in both.
#[test]
fn serial_doctor_reports_a_missing_role() {
    const PASSWORD: &str = "h6-doctor-pw-8e61c2";
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (member_p, reader_p) = rt.block_on(async {
        let a = admin::Admin::login().await;
        let member_p = a.project("h6-doctor-member").await;
        let reader_p = a.project("h6-doctor-reader").await;
        let user = a.user("h6-doctor", PASSWORD).await;
        let (member, reader) = (a.role("member").await, a.role("reader").await);
        a.set_role(&member_p, &user, &member, true).await;
        a.set_role(&reader_p, &user, &reader, true).await;
        a.set_role(&reader_p, &user, &member, false).await;
        (member_p, reader_p)
    });
    let (_gocdb, url) = registered_gocdb();
    let mut s = Setup::site(url);
    s.username = "h6-doctor".into();
    s.password = PASSWORD.into();
    s.project = "h6-doctor-reader".into();
    s.vos = "  - name: vo.doctor.example\n    projects:\n      - name: h6-doctor-member\n        domain-name: Default\n      - name: h6-doctor-reader\n        domain-name: Default\n".into();
    s.subscription_vos = "vo.doctor.example".into();
    let (code, r) = s.doctor(&[]);
    assert_eq!(code, 1, "{r:#}");
    let grant = format!(
        "openstack role add --user h6-doctor --user-domain Default --project {reader_p} member"
    );
    failed_with(&r, "roles.images.create", "403", &grant);
    let accept = checks(&r, "roles.images.accept");
    let of = |p: &str| {
        accept
            .iter()
            .find(|c| c["subject"].as_str().unwrap().contains(p))
            .unwrap_or_else(|| panic!("{accept:#?}"))
    };
    assert_eq!(of(&member_p)["status"], "ok");
    assert_eq!(of(&reader_p)["status"], "failed");
    assert!(of(&reader_p)["remedy"].as_str().unwrap().contains(&grant));
    for c in checks(&r, "roles.accounting.servers") {
        assert_eq!(c["status"], "ok", "a reader may list servers: {c:#}");
    }

    // A site credential whose token has no project (none configured, and
    // this user has no default project): image sync has no project to own
    // the images; the VO projects are still checked.
    let mut unscoped = s.clone();
    unscoped.project = String::new();
    let (code, u) = unscoped.doctor(&[]);
    assert_eq!(code, 1, "{u:#}");
    failed_with(
        &u,
        "roles.images.create",
        "token has no project",
        "openstack.auth.project-id",
    );
    for id in ["roles.images.upload", "roles.images.share"] {
        assert_eq!(one(&u, id)["status"], "skipped", "{u:#}");
    }
    assert_eq!(checks(&u, "roles.images.accept").len(), 2, "{u:#}");
    assert_eq!(one(&u, "keystone.auth")["status"], "ok", "{u:#}");

    // With an image to probe with: the member project owns a shared image
    // with the reader project as a member. Upload and share are probed by
    // real calls (409: allowed); accepting in the reader project by a real
    // call too (403: the role is missing). The image is untouched.
    let image = rt.block_on(async {
        let owner = admin::Admin::as_user("h6-doctor", PASSWORD, &member_p).await;
        let (st, v) = owner
            .glance(
                reqwest::Method::POST,
                "images",
                Some(
                    serde_json::json!({"name": "h6-doctor-probe-target", "disk_format": "raw",
                    "container_format": "bare", "visibility": "shared"}),
                ),
                None,
            )
            .await;
        assert_eq!(st, 201, "{v}");
        let id = v["id"].as_str().unwrap().to_string();
        let (st, _) = owner
            .glance(
                reqwest::Method::PUT,
                &format!("images/{id}/file"),
                None,
                Some(b"x"),
            )
            .await;
        assert_eq!(st, 204);
        let (st, v) = owner
            .glance(
                reqwest::Method::POST,
                &format!("images/{id}/members"),
                Some(serde_json::json!({"member": reader_p})),
                None,
            )
            .await;
        assert_eq!(st, 200, "{v}");
        id
    });
    s.project = "h6-doctor-member".into();
    let (_, r) = s.doctor(&[]);
    let probed = |id: &str| one(&r, id)["message"].as_str().unwrap().to_string();
    for id in [
        "roles.images.create",
        "roles.images.upload",
        "roles.images.share",
    ] {
        assert_eq!(one(&r, id)["status"], "ok", "{id}: {r:#}");
        assert!(
            probed(id).contains("409"),
            "{id} by a real call: {}",
            probed(id)
        );
    }
    let accept = checks(&r, "roles.images.accept");
    let reader = accept
        .iter()
        .find(|c| c["subject"].as_str().unwrap().contains(&reader_p))
        .unwrap();
    assert_eq!(reader["status"], "failed", "{reader:#}");
    assert!(
        reader["message"].as_str().unwrap().contains("403"),
        "{reader:#}"
    );
    let after = rt.block_on(async {
        let owner = admin::Admin::as_user("h6-doctor", PASSWORD, &member_p).await;
        let (_, img) = owner
            .glance(reqwest::Method::GET, &format!("images/{image}"), None, None)
            .await;
        let (_, members) = owner
            .glance(
                reqwest::Method::GET,
                &format!("images/{image}/members"),
                None,
                None,
            )
            .await;
        let (st, _) = owner
            .glance(
                reqwest::Method::DELETE,
                &format!("images/{image}"),
                None,
                None,
            )
            .await;
        assert_eq!(st, 204);
        (img, members)
    });
    assert_eq!(after.0["status"], "active", "{:#}", after.0);
    assert_eq!(after.0["size"], 1);
    assert_eq!(after.1["members"][0]["status"], "pending", "{:#}", after.1);
}
