//! Integration tests: `appliance crl refresh` (issue #11 point 2) against
//! the project's file server (in-process, port 0), with CRLs made by
//! `openssl ca` from the image tests' PKI (spec image-sync §2.4): a new CRL
//! is installed and then revokes the endorser in `appliance images verify`;
//! a CRL signed by another CA with the same name, a truncated CRL, a 404,
//! a `file:` URL and a redirect to one all keep the CRL in place.

use std::path::{Path, PathBuf};
use std::process::Command;

use fedcloud_appliance::testsrv::files;
use serde_json::Value;

use crate::images::lists::{list_json, Img};
use crate::images::pki::{pki, CA_DN, ENDORSER_DN};
use crate::util::{appliance, serve_on_loopback};

/// A test's own CA directory, CRL authority, file server and configuration
/// (the status tests use it too).
pub(crate) struct World {
    pub(crate) dir: tempfile::TempDir,
    /// The CA directory (`paths.ca-dir`).
    pub(crate) certs: PathBuf,
    /// Served by the file server.
    www: PathBuf,
    files: files::FilesServer,
    /// OpenSSL subject hash of the test CA.
    pub(crate) hash: String,
}

/// Lines a test adds to [`World::write_config`]'s configuration, each
/// ending with a newline and indented for where it goes.
#[derive(Default)]
pub(crate) struct Extra<'a> {
    /// The image subscription's name.
    pub(crate) subscription: &'a str,
    /// More `openstack.auth` keys.
    pub(crate) auth: &'a str,
    /// More `paths` keys.
    pub(crate) paths: &'a str,
    /// More top-level sections (before `images`).
    pub(crate) top: &'a str,
}

const CRL_CNF: &str = "[ ca ]\ndefault_ca = testca\n[ testca ]\ndatabase = DB/index.txt\ncrlnumber = DB/crlnumber\ndefault_md = sha256\ndefault_crl_days = 30\ncertificate = CERT.pem\nprivate_key = CERT.key\n";

fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI is needed for the CRL tests");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

impl World {
    pub(crate) fn new() -> World {
        let p = pki();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // Our own CRL databases: the test CA (`ca`), an impostor CA with
        // the same name and another key (`other`), and a CA of another name
        // (`foreign`, the project's test CA).
        let foreign = &crate::testsrv::pki::Pki::shared().ca;
        for (who, cert, key) in [
            ("ca", p.dir.join("ca.pem"), p.dir.join("ca.key")),
            ("other", p.dir.join("other.pem"), p.dir.join("other.key")),
            (
                "foreign",
                foreign.cert_path.clone(),
                foreign.key_path.clone(),
            ),
        ] {
            std::fs::copy(cert, d.join(format!("{who}.pem"))).unwrap();
            std::fs::copy(key, d.join(format!("{who}.key"))).unwrap();
            let db = d.join(format!("db-{who}"));
            std::fs::create_dir_all(&db).unwrap();
            std::fs::write(db.join("index.txt"), "").unwrap();
            std::fs::write(db.join("crlnumber"), "1000\n").unwrap();
            std::fs::write(
                d.join(format!("crl-{who}.cnf")),
                CRL_CNF
                    .replace("DB", &format!("db-{who}"))
                    .replace("CERT", who),
            )
            .unwrap();
        }
        std::fs::copy(p.dir.join("endorser.pem"), d.join("endorser.pem")).unwrap();
        let hash = String::from_utf8(openssl(d, &["x509", "-hash", "-noout", "-in", "ca.pem"]))
            .unwrap()
            .trim()
            .to_string();
        let certs = d.join("certificates");
        let www = d.join("www");
        std::fs::create_dir_all(&certs).unwrap();
        std::fs::create_dir_all(&www).unwrap();
        std::fs::copy(d.join("ca.pem"), certs.join("TestGridCA.pem")).unwrap();
        std::os::unix::fs::symlink("TestGridCA.pem", certs.join(format!("{hash}.0"))).unwrap();
        let files = serve_on_loopback(|l| {
            files::serve(
                l,
                files::FilesOptions {
                    root: www.clone(),
                    token: None,
                },
            )
            .unwrap()
        });
        let w = World {
            dir,
            certs,
            www,
            files,
            hash,
        };
        // A current CRL that revokes nothing, as fetch-crl left it.
        let first = w.gencrl("ca");
        std::fs::write(w.crl_file(), first).unwrap();
        w.set_crl_url(&w.url("crl/testgridca.crl"));
        // The signed list `images verify` checks.
        let body = list_json(
            "bbbbbbbb-0000-0000-0000-0000000000c1",
            "20260101000001",
            "2499-12-31T22:00:00Z",
            ENDORSER_DN,
            &[Img::new(
                "cccccccc-0000-0000-0000-000000000001",
                w.url("img"),
                b"x",
            )],
        );
        std::fs::write(
            w.www.join("crl-test.list"),
            p.sign(&body, "endorser", false),
        )
        .unwrap();
        w
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.files.server.addr())
    }

    pub(crate) fn crl_file(&self) -> PathBuf {
        self.certs.join(format!("{}.r0", self.hash))
    }

    fn set_crl_url(&self, url: &str) {
        std::fs::write(self.certs.join("TestGridCA.crl_url"), format!("{url}\n")).unwrap();
    }

    /// A CRL (PEM) signed by `who` (`ca`, `other` or `foreign`).
    pub(crate) fn gencrl(&self, who: &str) -> Vec<u8> {
        self.gencrl_with(who, &[])
    }

    /// A CRL (PEM) signed by `who`, with more `openssl ca` arguments
    /// (e.g. `-crlsec 1` for one that is stale a second later).
    pub(crate) fn gencrl_with(&self, who: &str, extra: &[&str]) -> Vec<u8> {
        let cnf = format!("crl-{who}.cnf");
        let mut args = vec!["ca", "-config", cnf.as_str(), "-gencrl"];
        args.extend_from_slice(extra);
        openssl(self.dir.path(), &args)
    }

    /// Revoke the endorser in the test CA's database.
    fn revoke_endorser(&self) {
        openssl(
            self.dir.path(),
            &["ca", "-config", "crl-ca.cnf", "-revoke", "endorser.pem"],
        );
    }

    /// Serve `bytes` where the CA's `.crl_url` points.
    pub(crate) fn serve_crl(&self, bytes: &[u8]) {
        std::fs::create_dir_all(self.www.join("crl")).unwrap();
        std::fs::write(self.www.join("crl/testgridca.crl"), bytes).unwrap();
    }

    fn config(&self) -> PathBuf {
        self.write_config(&Extra {
            subscription: "crl-test",
            ..Extra::default()
        })
    }

    /// Write `appliance.yaml` (returned) and its secrets file in the test's
    /// directory: this world's CA directory and signed list, paths under the
    /// directory, and `extra`'s lines where they belong (the status tests
    /// add theirs).
    pub(crate) fn write_config(&self, extra: &Extra) -> PathBuf {
        let d = self.dir.path();
        let yaml = format!(
            "schema-version: 2
site:
  gocdb: TEST-SITE
  endpoint: https://keystone.test.example:5000/v3
openstack:
  auth:
    type: password
{auth}    username: fedcloud
    user-domain-name: Default
secrets-file: {d}/secrets.yaml
vos:
  - name: vo.alpha.example
    projects:
      - id: 0123456789abcdef0123456789abcdef
paths:
  image-data: {d}/image-data
  spool: {d}/spool
  state: {d}/state
{paths}  ca-dir: {certs}
{top}images:
  allow-http: [lists]
  subscriptions:
    - name: {name}
      url: {list}
      endorser:
        dn: \"{ENDORSER_DN}\"
        ca: \"{CA_DN}\"
",
            d = d.display(),
            auth = extra.auth,
            paths = extra.paths,
            top = extra.top,
            name = extra.subscription,
            certs = self.certs.display(),
            list = self.url("crl-test.list"),
        );
        let path = d.join("appliance.yaml");
        std::fs::write(&path, yaml).unwrap();
        crate::messaging::write_private(&d.join("secrets.yaml"), b"openstack:\n  password: x\n");
        path
    }

    /// `appliance [--json] crl refresh ARGS`: exit code and stdout.
    fn refresh(&self, json: bool, args: &[&str]) -> (i32, String) {
        let mut cmd = appliance();
        cmd.arg("--config").arg(self.config());
        if json {
            cmd.arg("--json");
        }
        let out = cmd.args(["crl", "refresh"]).args(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    }

    fn refresh_json(&self, args: &[&str]) -> (i32, Value) {
        let mut cmd = appliance();
        let out = cmd
            .arg("--config")
            .arg(self.config())
            .args(["--json", "crl", "refresh"])
            .args(args)
            .output()
            .unwrap();
        let v = crate::util::stdout_json(&out, "crl refresh --json");
        (out.status.code().unwrap_or(-1), v)
    }

    /// `appliance images verify`: exit code and output.
    fn verify(&self) -> (i32, String) {
        let out = appliance()
            .arg("--config")
            .arg(self.config())
            .args(["images", "verify"])
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    }
}

fn der(pem: &[u8]) -> Vec<u8> {
    openssl::x509::X509Crl::from_pem(pem)
        .unwrap()
        .to_der()
        .unwrap()
}

/// The acceptance test: a new CRL (served as DER) is installed, in PEM, and
/// from then on `images verify` refuses the list of the revoked endorser.
#[test]
fn a_new_crl_is_installed_and_revokes_the_signer_in_images_verify() {
    let w = World::new();
    let (code, out) = w.verify();
    assert_eq!(code, 0, "the list verifies before the revocation: {out}");

    w.revoke_endorser();
    let new = w.gencrl("ca");
    w.serve_crl(&der(&new));
    let (code, report) = w.refresh_json(&[]);
    assert_eq!(code, 0, "{report:#}");
    let ca = &report["cas"][0];
    assert_eq!(ca["status"], "updated", "{report:#}");
    assert_eq!(ca["crl"]["revoked"], 1, "{report:#}");
    assert_eq!(ca["previous"]["revoked"], 0, "{report:#}");
    assert_eq!(ca["freshness"], "fresh");
    assert_eq!(ca["crl_file"], format!("{}.r0", w.hash));
    assert_eq!(report["summary"]["updated"], 1);
    let installed = std::fs::read(w.crl_file()).unwrap();
    assert!(installed.starts_with(b"-----BEGIN X509 CRL-----"));
    assert_eq!(
        der(&installed),
        der(&new),
        "the served CRL is the one in place"
    );

    let (code, out) = w.verify();
    assert_ne!(
        code, 0,
        "the revoked endorser's list must be refused: {out}"
    );
    assert!(out.contains("revoked"), "{out}");

    // The run is recorded for `appliance status`.
    let rec: Value = serde_json::from_slice(
        &std::fs::read(w.dir.path().join("state/runs/crl-refresh.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(rec["job"], "crl-refresh");
    assert_eq!(rec["outcome"], "success");
    assert_eq!(rec["exit_code"], 0);
    assert!(
        rec["summary"].as_str().unwrap().contains("1 updated"),
        "{rec:#}"
    );

    // The same CRL again: unchanged, the file is not rewritten.
    let before = std::fs::metadata(w.crl_file()).unwrap().modified().unwrap();
    let (code, out) = w.refresh(false, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("unchanged"), "{out}");
    assert_eq!(
        std::fs::metadata(w.crl_file()).unwrap().modified().unwrap(),
        before
    );
}

/// A CRL signed by another CA of the same name or of another name, an
/// expired one, a truncated CRL, a 404 and a `file:` URL: each fails with
/// its reason and remedy (exit 1), and the CRL in place stays, byte for
/// byte.
#[test]
fn a_bad_crl_keeps_the_one_in_place() {
    let w = World::new();
    w.revoke_endorser();
    let good = w.gencrl("ca");
    let before = std::fs::read(w.crl_file()).unwrap();
    let forged = w.gencrl("other");
    let foreign = w.gencrl("foreign");
    let expired = w.gencrl_with("ca", &["-crlsec", "1"]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // An http CRL URL whose answer redirects to a local file (#14 item 3).
    let local = w.dir.path().join("local.crl");
    std::fs::write(&local, &good).unwrap();
    let to_file = {
        let target = format!("file://{}", local.display());
        crate::images::rawhttp::serve(move |_| crate::images::rawhttp::Answer::redirect(&target))
    };
    type Arrange<'a> = Box<dyn Fn() + 'a>;
    let cases: Vec<(&str, Arrange, &str)> = vec![
        (
            "signed by another CA",
            Box::new(|| w.serve_crl(&forged)),
            "signature does not verify",
        ),
        (
            "issued by another CA",
            Box::new(|| w.serve_crl(&foreign)),
            "not by this CA",
        ),
        (
            "expired",
            Box::new(|| w.serve_crl(&expired)),
            "(nextUpdate)",
        ),
        (
            "truncated",
            Box::new(|| w.serve_crl(&good[..good.len() / 2])),
            "not a CRL",
        ),
        (
            "404",
            Box::new(|| {
                let _ = std::fs::remove_file(w.www.join("crl/testgridca.crl"));
            }),
            "404",
        ),
        (
            "file: URL",
            Box::new(|| {
                let p = w.dir.path().join("local.crl");
                std::fs::write(&p, &good).unwrap();
                w.set_crl_url(&format!("file://{}", p.display()));
            }),
            "only http and https",
        ),
        (
            "redirect to a file: URL",
            Box::new(|| w.set_crl_url(&to_file.url("crl/testgridca.crl"))),
            "a redirect target must be an https or http URL; the `file` scheme is refused",
        ),
    ];
    for (what, arrange, reason) in cases {
        arrange();
        let (code, report) = w.refresh_json(&[]);
        assert_eq!(code, 1, "{what}: exit 1 (some CAs failed): {report:#}");
        let ca = &report["cas"][0];
        assert_eq!(ca["status"], "failed", "{what}: {report:#}");
        let err = ca["error"].as_str().unwrap_or_default();
        assert!(err.contains(reason), "{what}: {err}");
        assert!(
            !ca["remedy"].as_str().unwrap_or_default().is_empty(),
            "{what}: a remedy"
        );
        assert_eq!(ca["crl"]["revoked"], 0, "{what}: the old CRL is reported");
        assert_eq!(
            std::fs::read(w.crl_file()).unwrap(),
            before,
            "{what}: the CRL in place must stay"
        );
        let (code, out) = w.verify();
        assert_eq!(
            code, 0,
            "{what}: the old CRL still lets the list verify: {out}"
        );
    }
    // The human report names the CA, the URL's error and the remedy.
    let (code, out) = w.refresh(false, &[]);
    assert_eq!(code, 1);
    assert!(
        out.contains("FAILED") && out.contains("Test Grid CA 2026") && out.contains("remedy:"),
        "{out}"
    );
}

/// A mirror serving an older CRL than the one in place cannot roll the
/// revocations back: the newer CRL stays and the signer stays revoked.
#[test]
fn an_older_crl_does_not_replace_a_newer_one() {
    let w = World::new();
    let older = w.gencrl("ca");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    w.revoke_endorser();
    let newer = w.gencrl("ca");
    w.serve_crl(&newer);
    let (code, report) = w.refresh_json(&[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["cas"][0]["crl"]["revoked"], 1, "{report:#}");
    let installed = std::fs::read(w.crl_file()).unwrap();

    w.serve_crl(&older);
    let (code, report) = w.refresh_json(&[]);
    assert_eq!(code, 1, "{report:#}");
    let ca = &report["cas"][0];
    assert_eq!(ca["status"], "failed", "{report:#}");
    assert!(
        ca["error"]
            .as_str()
            .unwrap()
            .contains("older than the one in place"),
        "{report:#}"
    );
    assert!(
        ca["remedy"].as_str().unwrap().contains("mirror"),
        "{report:#}"
    );
    assert_eq!(ca["crl"]["revoked"], 1, "the newer CRL is reported");
    assert_eq!(std::fs::read(w.crl_file()).unwrap(), installed);
    let (code, out) = w.verify();
    assert_ne!(code, 0, "the endorser stays revoked: {out}");
}

/// A second URL is tried when the first fails (fetch-crl's order); a dry
/// run installs nothing; a CA without CRL URL is skipped, not failed; a
/// file that is no certificate is named. The reports, a failed run's too,
/// are checked against `docs/crl-refresh-json.md`.
#[test]
fn urls_in_order_dry_run_and_cas_without_url() {
    let w = World::new();
    w.revoke_endorser();
    let new = w.gencrl("ca");
    w.serve_crl(&new);
    std::fs::write(
        w.certs.join("TestGridCA.crl_url"),
        format!(
            "# mirrors\n{}\n{}\n",
            w.url("missing.crl"),
            w.url("crl/testgridca.crl")
        ),
    )
    .unwrap();
    // Another CA, without any CRL URL.
    let other = crate::testsrv::pki::Pki::shared();
    std::fs::copy(&other.ca.cert_path, w.certs.join("OtherCA.pem")).unwrap();
    std::fs::write(w.certs.join("Broken.pem"), "not a certificate\n").unwrap();
    let before = std::fs::read(w.crl_file()).unwrap();

    let (code, dry) = w.refresh_json(&["--dry-run"]);
    assert_eq!(code, 0, "{dry:#}");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(std::fs::read(w.crl_file()).unwrap(), before, "dry run");
    assert!(!w.dir.path().join("state/runs/crl-refresh.json").exists());
    assert!(
        dry["problems"][0]
            .as_str()
            .unwrap()
            .contains("Broken.pem: no PEM certificate"),
        "{dry:#}"
    );

    let (code, report) = w.refresh_json(&[]);
    assert_eq!(code, 0, "{report:#}");
    let cas = report["cas"].as_array().unwrap();
    assert_eq!(cas.len(), 2, "{report:#}");
    let ours = cas.iter().find(|c| c["ca"] == CA_DN).unwrap();
    assert_eq!(ours["status"], "updated");
    assert_eq!(ours["failures"].as_array().unwrap().len(), 1, "{report:#}");
    assert_eq!(ours["url"], w.url("crl/testgridca.crl"));
    let theirs = cas.iter().find(|c| c["ca"] != CA_DN).unwrap();
    assert_eq!(theirs["status"], "skipped");
    assert_eq!(theirs["freshness"], "missing");
    assert_eq!(report["summary"]["skipped"], 1);
    assert_ne!(std::fs::read(w.crl_file()).unwrap(), before);

    w.serve_crl(b"-----BEGIN X509 CRL-----\nMIIB");
    let (code, failed) = w.refresh_json(&[]);
    assert_eq!(code, 1, "{failed:#}");
    crate::util::schema::check("docs/crl-refresh-json.md", &[&dry, &report, &failed]);
}

/// Without a configuration, `--ca-dir` alone is enough.
#[test]
fn ca_dir_without_configuration() {
    let w = World::new();
    w.serve_crl(&std::fs::read(w.crl_file()).unwrap());
    let out = appliance()
        .args(["--config", "/nonexistent/appliance.yaml", "crl", "refresh"])
        .arg("--ca-dir")
        .arg(&w.certs)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1 CA(s)"), "{text}");
}
