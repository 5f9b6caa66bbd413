//! Integration tests: `appliance configure` (issue #10) against the local
//! reference site.
//!
//! Each run gets its own root directory (`--root`): the configuration,
//! secrets, state, spool, image cache, units and timers all go below it.
//! The answers are the site's (`reference-site.env`); the image list is
//! signed here by an endorser certificate from the site's test CA and
//! served by the site's file server. `wizard`: the interactive wizard in
//! tmux; `noninteractive`: answers file, config drive, metadata service,
//! `--only`, problems; `disk`: `/image_data` on a loop device.

mod disk;
mod noninteractive;
mod wizard;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::util::{appliance, refsite};

/// The signed image list of this test process.
pub struct List {
    /// Subscription name (unique per process: Glance images are found by it).
    pub name: String,
    /// Where the site's file server serves it.
    pub url: String,
    /// The endorser's DN.
    pub dn: String,
    /// The test CA's DN.
    pub ca: String,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn dn_of(cert: &Path, which: &str) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", which, "-nameopt", "compat", "-in"])
        .arg(cert)
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    s.split_once('=').unwrap().1.trim().to_string()
}

/// A small signed HEPiX list with one 16 MiB qcow2 image, made once per
/// test process with the site's test CA (as `scripts/lib/demo_flows.sh`).
pub fn list() -> &'static List {
    static LIST: OnceLock<List> = OnceLock::new();
    LIST.get_or_init(|| {
        let site = refsite();
        let name = format!("configure-{}", std::process::id());
        let served = site.path("REFSITE_FILES_ROOT").join(&name);
        std::fs::create_dir_all(&served).unwrap();
        let work = served.join("work");
        std::fs::create_dir_all(&work).unwrap();
        let pki = site.path("REFSITE_BASE").join("pki");
        std::fs::write(
            work.join("e.cnf"),
            "[ req ]\ndistinguished_name = dn\nprompt = no\n[ dn ]\n[ v3_smime ]\n\
             basicConstraints = critical,CA:FALSE\n\
             keyUsage = critical,digitalSignature,nonRepudiation,keyEncipherment\n\
             extendedKeyUsage = serverAuth,clientAuth,emailProtection\n\
             subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n",
        )
        .unwrap();
        let ca_pem = pki.join("ca.pem");
        let ca_key = pki.join("ca-work/ca.key");
        openssl(
            &work,
            &[
                "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "e.key", "-out",
                "e.csr", "-subj", "/DC=org/DC=example/CN=configure-endorser", "-config", "e.cnf",
            ],
        );
        let serial = format!("0x{:016x}", rand_serial());
        openssl(
            &work,
            &[
                "x509", "-req", "-in", "e.csr", "-CA", ca_pem.to_str().unwrap(), "-CAkey",
                ca_key.to_str().unwrap(), "-set_serial", &serial, "-days", "30", "-sha256",
                "-extfile", "e.cnf", "-extensions", "v3_smime", "-out", "e.pem",
            ],
        );
        let img = served.join("image.qcow2");
        let st = Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(&img)
            .arg("16M")
            .status()
            .expect("qemu-img");
        assert!(st.success());
        let bytes = std::fs::read(&img).unwrap();
        use sha2::Digest;
        let sum = hex::encode(sha2::Sha512::digest(&bytes));
        let base = format!("{}/{name}", site.var("REFSITE_FILES_URL"));
        let dn = dn_of(&work.join("e.pem"), "-subject");
        let ca = dn_of(&ca_pem, "-subject");
        let now = chrono::Utc::now();
        let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let json = serde_json::json!({"hv:imagelist": {
            "dc:date:created": fmt(now),
            "dc:date:expires": fmt(now + chrono::Duration::days(20)),
            "dc:description": "configure test list",
            "dc:identifier": format!("5e0c0a9e-0000-4000-8000-{:012x}", std::process::id()),
            "dc:source": format!("{base}/"),
            "dc:title": "configure test",
            "hv:endorser": {"hv:x509": {"dc:creator": "test", "hv:ca": ca, "hv:dn": dn, "hv:email": "t@example.org"}},
            "hv:images": [{"hv:image": {
                "dc:identifier": format!("5e0c0a9e-1111-4000-8000-{:012x}", std::process::id()),
                "dc:title": "Configure test image",
                "dc:description": "16 MiB empty qcow2",
                "ad:mpuri": "https://appdb.example.org/store/vm/image/configure:1/",
                "hv:format": "QCOW2",
                "hv:size": bytes.len().to_string(),
                "hv:uri": format!("{base}/image.qcow2"),
                "hv:version": "1",
                "sl:checksum:sha512": sum,
                "sl:arch": "x86_64", "sl:os": "Linux", "sl:osname": "Debian", "sl:osversion": "12"
            }}],
            "hv:uri": format!("{base}/image.list"),
            "hv:version": "1"
        }});
        std::fs::write(work.join("list.json"), serde_json::to_vec_pretty(&json).unwrap()).unwrap();
        openssl(
            &work,
            &[
                "smime", "-sign", "-md", "sha256", "-signer", "e.pem", "-inkey", "e.key", "-in",
                "list.json", "-out", "../image.list",
            ],
        );
        List {
            url: format!("{base}/image.list"),
            name,
            dn,
            ca,
        }
    })
}

fn rand_serial() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    t ^ (u64::from(std::process::id()) << 32)
}

/// The answers the tests give, as an answers file.
pub fn answers_yaml() -> String {
    let s = refsite();
    let l = list();
    format!(
        "#appliance-config\n\
site:\n  name: {site}\n  endpoint: {ks}\n  gocdb-url: {gocdb}/gocdbpi/public/\n\
keystone:\n  auth-type: password\n  username: {user}\n  password: {pw}\n  project: alpha-1\n\
vos:\n  - name: {alpha}\n    projects: [alpha-1, alpha-2]\n  - name: {beta}\n    projects: [beta-1]\n\
host-certificate:\n  certificate: {cert}\n  key: {key}\n\
trust-anchors:\n  ca-dir: {ca}\n\
ams:\n  host: 127.0.0.1\n  port: {ams_port}\n  authn-port: {ams_port}\n\
images:\n  lists:\n    - name: {lname}\n      url: {lurl}\n      endorser-dn: \"{ldn}\"\n",
        site = s.var("REFSITE_SITE_NAME"),
        ks = s.var("REFSITE_KEYSTONE_URL"),
        gocdb = s.var("REFSITE_GOCDB_URL"),
        user = s.var("REFSITE_USER"),
        pw = s.var("REFSITE_PASSWORD"),
        alpha = s.var("REFSITE_VO_ALPHA"),
        beta = s.var("REFSITE_VO_BETA"),
        cert = s.var("REFSITE_HOST_CERT"),
        key = s.var("REFSITE_HOST_KEY"),
        ca = s.var("REFSITE_CA_DIR"),
        ams_port = s.var("REFSITE_AMS_URL").rsplit(':').next().unwrap(),
        lname = l.name,
        lurl = l.url,
        ldn = l.dn,
    )
}

/// A root directory for one run.
pub struct Root {
    pub dir: tempfile::TempDir,
}

impl Root {
    pub fn new() -> Root {
        Root {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn config(&self) -> PathBuf {
        self.path().join("etc/fedcloud-appliance/appliance.yaml")
    }
    pub fn secrets(&self) -> PathBuf {
        self.path().join("etc/fedcloud-appliance/secrets.yaml")
    }
    pub fn marker(&self) -> PathBuf {
        self.path().join("var/lib/fedcloud-appliance/.configured")
    }
    /// `appliance configure --root ROOT` (and the config below it).
    pub fn configure(&self) -> assert_cmd::Command {
        let mut c = appliance();
        c.arg("--config")
            .arg(self.config())
            .args(["configure", "--root"])
            .arg(self.path());
        c.timeout(std::time::Duration::from_secs(300));
        c
    }
    /// `appliance --config ROOT/... ARGS`.
    pub fn appliance(&self) -> assert_cmd::Command {
        let mut c = appliance();
        c.arg("--config").arg(self.config());
        c.timeout(std::time::Duration::from_secs(600));
        c
    }
    /// The configuration and secrets with the root written as `@ROOT@`.
    pub fn files(&self) -> (String, String) {
        let r = self.path().to_str().unwrap();
        let read = |p: PathBuf| {
            std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
                .replace(r, "@ROOT@")
        };
        (read(self.config()), read(self.secrets()))
    }
    /// Write the standard answers file into the root and return its path.
    pub fn answers_file(&self, text: &str) -> PathBuf {
        let p = self.path().join("answers.yaml");
        std::fs::write(&p, text).unwrap();
        p
    }
}

/// Run a configure that must succeed; its stdout+stderr.
pub fn ok(mut c: assert_cmd::Command) -> String {
    let out = c.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "exit {:?}:\n{text}",
        out.status.code()
    );
    text
}

/// A configured root from the standard answers (for tests that start from
/// an existing configuration).
pub fn configured() -> Root {
    let root = Root::new();
    let f = root.answers_file(&answers_yaml());
    let mut c = root.configure();
    c.arg("--answers").arg(f);
    ok(c);
    root
}
