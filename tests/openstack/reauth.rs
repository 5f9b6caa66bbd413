//! Keystone right after a credential change (issue #14 item 12).
//!
//! A password change revokes every token of the user issued up to and
//! including that second. The client holds an unscoped token and rescopes
//! it per project; Keystone then refuses the rescoping (404 `Failed to
//! validate token`), and a service refuses a revoked project token (401).
//! The client must authenticate once more from its credential, in a later
//! second than the revocation, and carry on: in the library, and in every
//! flow (`info show`, `accounting extract`, `doctor`, `images sync` through
//! the same client).
//!
//! Each test works with a user and project of its own (created and deleted
//! here), so that changing its password disturbs no other test. The CLI
//! tests put the project's fault proxy in front of Keystone and hold the
//! rescoping request back until the test has changed the password: the
//! refusal then happens on every run, not in one run in N.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fedcloud_appliance::openstack::access::DomainRef;
use fedcloud_appliance::openstack::{image, Credential, Error, OpenStack, ProjectRef, Session};
use fedcloud_appliance::secret::Secret;
use fedcloud_appliance::testsrv::fault_proxy::{self, Fault, FaultControl};
use reqwest::Method;
use serde_json::{json, Value};
use url::Url;

use super::proxy::Proxy;
use super::{access, admin, auth_url, client, keystone_parts, unique, var};

/// A user with the member role on a project of its own.
struct OwnUser {
    admin: Session,
    name: String,
    password: String,
    user_id: String,
    project_id: String,
}

impl OwnUser {
    async fn new(prefix: &str) -> OwnUser {
        let admin = client(admin()).session().await.unwrap();
        let name = unique(prefix);
        let password = format!("pw-{}", unique("x"));
        let p = admin
            .send_json(
                Method::POST,
                "identity",
                "projects",
                Some(&json!({"project": {"name": name, "domain_id": "default"}})),
                None,
            )
            .await
            .unwrap()
            .unwrap();
        let project_id = p["project"]["id"].as_str().unwrap().to_string();
        let u = admin
            .send_json(
                Method::POST,
                "identity",
                "users",
                Some(
                    &json!({"user": {"name": name, "domain_id": "default", "password": password}}),
                ),
                None,
            )
            .await
            .unwrap()
            .unwrap();
        let user_id = u["user"]["id"].as_str().unwrap().to_string();
        let roles: Value = admin
            .get_json("identity", "roles", &[("name", "member")], None)
            .await
            .unwrap();
        let role = roles["roles"][0]["id"].as_str().unwrap();
        admin
            .send_json(
                Method::PUT,
                "identity",
                &format!("projects/{project_id}/users/{user_id}/roles/{role}"),
                None,
                None,
            )
            .await
            .unwrap();
        OwnUser {
            admin,
            name,
            password,
            user_id,
            project_id,
        }
    }

    fn credential(&self, project: Option<ProjectRef>) -> Credential {
        Credential::Password {
            username: self.name.clone(),
            user_domain: DomainRef::Id("default".into()),
            password: Secret::new(self.password.clone()),
            project,
        }
    }

    fn project(&self) -> ProjectRef {
        ProjectRef::Id(self.project_id.clone())
    }

    /// Set the password (to the same value unless `new` is given): Keystone
    /// revokes every token of the user issued up to this second.
    async fn change_password(&self, new: Option<&str>) {
        let pw = new.unwrap_or(&self.password);
        self.admin
            .send_json(
                Method::PATCH,
                "identity",
                &format!("users/{}", self.user_id),
                Some(&json!({"user": {"password": pw}})),
                None,
            )
            .await
            .unwrap();
    }
}

/// The user and the project are deleted when the test ends, passed or not.
impl Drop for OwnUser {
    fn drop(&mut self) {
        let paths = [
            format!("users/{}", self.user_id),
            format!("projects/{}", self.project_id),
        ];
        // Drop cannot await, and the test's runtime is blocked here: a
        // thread with its own runtime and its own client does the calls.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let admin = client(admin()).session().await?;
                for path in paths {
                    admin
                        .send_json(Method::DELETE, "identity", &path, None, None)
                        .await?;
                }
                Ok::<_, Error>(())
            })
            .map_err(|e| e.to_string())
        });
        if let Ok(Err(e)) = done.join() {
            eprintln!("deleting the test's user and project: {e}");
        }
    }
}

fn token_posts(proxy: &Proxy) -> usize {
    proxy
        .paths()
        .iter()
        .filter(|p| p.starts_with("POST ") && p.ends_with("/auth/tokens"))
        .count()
}

/// The unscoped token is revoked by a password change; rescoping it is
/// refused by the real Keystone, and the client authenticates once more
/// (after the revocation second) instead of failing the project.
#[tokio::test]
async fn rescoping_refused_after_a_password_change_reauthenticates_once() {
    let u = OwnUser::new("reauth-rescope").await;
    let (origin, path) = keystone_parts();
    let proxy = Proxy::http(&origin).await;
    let os = OpenStack::new(access(&proxy.url("http", &path), u.credential(None))).unwrap();

    // The unscoped token, in use.
    let projects = os.projects().await.unwrap();
    assert!(projects.iter().any(|p| p.id == u.project_id));
    assert_eq!(token_posts(&proxy), 1);

    u.change_password(None).await;
    let t = Instant::now();
    let s = os.scoped(&u.project()).await.unwrap_or_else(|e| {
        panic!("scoping right after a password change: {e}");
    });
    assert_eq!(s.project_id(), Some(u.project_id.as_str()));
    // refused rescope, new unscoped token, rescope
    assert_eq!(token_posts(&proxy), 4, "{:?}", proxy.paths());
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "the new token must come from a later second than the revocation"
    );
    // and the token works with a service.
    image::images(&s, &image::ImageQuery::default())
        .await
        .unwrap();
}

/// A project token revoked after it was issued: the service (Glance) says
/// 401, the session gets a new token once and the call succeeds.
#[tokio::test]
async fn a_service_refusing_a_revoked_token_gets_a_new_one_once() {
    let u = OwnUser::new("reauth-service").await;
    let (origin, path) = keystone_parts();
    let proxy = Proxy::http(&origin).await;
    let os = OpenStack::new(access(&proxy.url("http", &path), u.credential(None))).unwrap();
    let s = os.scoped(&u.project()).await.unwrap();
    assert_eq!(token_posts(&proxy), 2);
    u.change_password(None).await;
    let images = image::images(&s, &image::ImageQuery::default()).await;
    assert!(images.is_ok(), "{:?}", images.err());
    // Glance said 401: a new unscoped token and its rescoping.
    assert_eq!(token_posts(&proxy), 4, "{:?}", proxy.paths());
    // Nova too, with the renewed token.
    let q: Value = s
        .get_json(
            "compute",
            &format!("os-quota-sets/{}", u.project_id),
            &[],
            None,
        )
        .await
        .unwrap();
    assert!(q.get("quota_set").is_some(), "{q}");
}

/// A real change (the configured password is now wrong): one more try,
/// then the refusal is reported, naming the request and never the secret.
#[tokio::test]
async fn a_changed_password_is_reported_after_one_retry() {
    let u = OwnUser::new("reauth-changed").await;
    let (origin, path) = keystone_parts();
    let proxy = Proxy::http(&origin).await;
    let os = OpenStack::new(access(&proxy.url("http", &path), u.credential(None))).unwrap();
    os.projects().await.unwrap();
    u.change_password(Some("another-password-0815")).await;
    let e = os.scoped(&u.project()).await.unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e:?}");
    assert!(!e.to_string().contains(&u.password), "{e}");
    // base, refused rescope, refused re-authentication: no loop.
    assert_eq!(token_posts(&proxy), 3, "{:?}", proxy.paths());
}

// ----------------------------------------------------------- the flows --

/// A configuration for `u` (password, no project of its own: the VO's
/// project is reached by rescoping) with Keystone at `auth_url`.
fn flow_config(dir: &Path, u: &OwnUser, auth_url: &str) -> std::path::PathBuf {
    let site = dir.join("site.yaml");
    std::fs::write(
        &site,
        format!(
            "gocdb: {}\nendpoint: {}\nvos:\n  - name: vo.reauth.example\n    auth:\n      project_id: {}\n",
            var("REFSITE_SITE_NAME"),
            super::auth_url(),
            u.project_id
        ),
    )
    .unwrap();
    let secrets = dir.join("secrets.yaml");
    std::fs::write(
        &secrets,
        format!("openstack:\n  password: \"{}\"\n", u.password),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = dir.join("appliance.yaml");
    std::fs::write(
        &config,
        format!(
            "schema-version: 2\nsite:\n  catch-all: {site}\nopenstack:\n  auth:\n    type: password\n    auth-url: {auth_url}\n    username: {user}\n    user-domain-name: Default\n  region: {region}\nsecrets-file: {secrets}\npaths:\n  state: {d}/state\n  spool: {d}/spool\n  image-data: {d}/image-data\ninfo:\n  gocdb-url: {gocdb}/gocdbpi/public/\naccounting:\n  first-run: 2000-01-01\n",
            site = site.display(),
            user = u.name,
            region = var("OS_REGION_NAME"),
            secrets = secrets.display(),
            d = dir.display(),
            gocdb = var("REFSITE_GOCDB_URL"),
        ),
    )
    .unwrap();
    config
}

/// Run `appliance <args>` with Keystone behind a fault proxy that holds
/// token request number `held` (the flow's first rescoping) back until the
/// password has been changed; the run's stdout, stderr and exit code. The
/// tests check that the refusal did happen (the client's log line), so a
/// flow that changes its order of requests fails its test, never passes it
/// vacuously.
async fn run_through_a_password_change(
    u: &OwnUser,
    args: &[&str],
    held: u64,
) -> (String, String, i32) {
    let upstream = Url::parse(&auth_url()).unwrap().join("/").unwrap();
    let (addr, faults): (_, FaultControl) = fault_proxy::spawn(upstream);
    let tokens = "/v3/auth/tokens";
    for _ in 1..held {
        faults.push(Fault::default().on_path(tokens)); // as is
    }
    faults.push(Fault::delay(Duration::from_secs(6)).on_path(tokens)); // the rescoping: held
    let dir = tempfile::tempdir().unwrap();
    let config = flow_config(dir.path(), u, &format!("http://{addr}/v3"));
    let bin = assert_cmd::cargo::cargo_bin("appliance");
    let child = std::process::Command::new(bin)
        .arg("--config")
        .arg(&config)
        .args(args)
        .env_remove("APPLIANCE_CONFIG")
        .env_remove("JOURNAL_STREAM")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while faults.stats().faulted < held {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the rescoping request never came: {:?}",
            faults.stats()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The unscoped token has been issued; the rescoping is held back.
    u.change_password(None).await;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

#[tokio::test]
async fn info_show_right_after_a_password_change() {
    let u = OwnUser::new("reauth-info").await;
    let (stdout, stderr, code) = run_through_a_password_change(&u, &["info", "show"], 2).await;
    assert_eq!(code, 0, "{stderr}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    let shares = doc["Share"].as_array().unwrap();
    assert_eq!(shares.len(), 1, "{stdout}");
    assert!(
        stderr.contains("authenticating again once"),
        "the refusal was not met by a re-authentication: {stderr}"
    );
}

#[tokio::test]
async fn accounting_extract_right_after_a_password_change() {
    let u = OwnUser::new("reauth-acct").await;
    let (stdout, stderr, code) =
        run_through_a_password_change(&u, &["--json", "accounting", "extract", "--dry-run"], 2)
            .await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["projects"][0]["ok"], true, "{report:#}");
    assert!(stderr.contains("authenticating again once"), "{stderr}");
}

#[tokio::test]
async fn doctor_right_after_a_password_change() {
    let u = OwnUser::new("reauth-doctor").await;
    // the site credential's check (keystone.auth), the listing of the
    // projects it reaches, then the VO client's unscoped token and its
    // rescoping
    let (stdout, stderr, code) = run_through_a_password_change(&u, &["doctor"], 4).await;
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("OK    keystone.project")
                && l.contains("of vo.reauth.example: scoped")),
        "exit {code}\n{stdout}\n{stderr}"
    );
    assert!(stderr.contains("authenticating again once"), "{stderr}");
}
