//! A test PKI for signed image lists, made once per test process with the
//! `openssl` CLI exactly as spec image-sync §2.4 (IGTF-style DNs, a hashed
//! CA directory with a `<hash>.r0` CRL): the endorser (S/MIME purpose), a
//! host-only endorser (EKU serverAuth, clientAuth), a revoked signer, an
//! impostor with the endorser's DN from another CA, and a TLS server
//! certificate for 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The endorser's DN and CA, as lists and subscriptions name them.
pub const ENDORSER_DN: &str = "/DC=EU/DC=EGI/C=NL/O=Hosts/O=EGI.eu/CN=appdb.test.local";
/// The test CA.
pub const CA_DN: &str = "/DC=ORG/DC=TEST-GRID/CN=Test Grid CA 2026";
/// The revoked signer's DN.
pub const REVOKED_DN: &str = "/DC=EU/DC=EGI/C=NL/O=Hosts/O=EGI.eu/CN=revoked.test.local";

pub struct Pki {
    pub dir: PathBuf,
}

fn run(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI is needed for the image-list tests");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

const CNF: &str = r#"[ req ]
distinguished_name = dn
prompt = no
[ dn ]
[ v3_ca ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ v3_host ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment,dataEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ v3_server ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ v3_smime ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,nonRepudiation,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth,emailProtection
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"#;

const CRL_CNF: &str = r#"[ ca ]
default_ca = testca
[ testca ]
database = db/index.txt
crlnumber = db/crlnumber
default_md = sha256
default_crl_days = 30
certificate = ca.pem
private_key = ca.key
"#;

impl Pki {
    /// The hashed CA directory with the CA and its CRL.
    pub fn ca_dir(&self) -> PathBuf {
        self.dir.join("certificates")
    }
    /// The CA without any CRL.
    pub fn ca_dir_without_crl(&self) -> PathBuf {
        self.dir.join("certificates-nocrl")
    }
    /// Certificate and key of a TLS server on 127.0.0.1 issued by the CA.
    pub fn server_tls(&self) -> (PathBuf, PathBuf) {
        (self.dir.join("server.pem"), self.dir.join("server.key"))
    }
    /// A directory with an unrelated CA.
    pub fn other_ca_dir(&self) -> PathBuf {
        self.dir.join("certificates-other")
    }

    /// Sign `content` like AppDB (`multipart/signed`, sha256) or opaque.
    /// `who`: endorser, hostonly, revoked, impostor.
    pub fn sign(&self, content: &[u8], who: &str, opaque: bool) -> Vec<u8> {
        let tmp = tempfile::tempdir().unwrap();
        let input = tmp.path().join("in.json");
        let output = tmp.path().join("out.list");
        std::fs::write(&input, content).unwrap();
        let cert = self.dir.join(format!("{who}.pem"));
        let key = self.dir.join(format!("{who}.key"));
        let mut args = vec![
            "smime",
            "-sign",
            "-md",
            "sha256",
            "-signer",
            cert.to_str().unwrap(),
            "-inkey",
            key.to_str().unwrap(),
            "-in",
            input.to_str().unwrap(),
            "-out",
            output.to_str().unwrap(),
        ];
        if opaque {
            args.push("-nodetach");
        }
        run(tmp.path(), &args);
        std::fs::read(output).unwrap()
    }
}

/// Where this process's PKI lives; removed when the process exits (a static
/// is never dropped, and nextest runs every test in its own process).
static PKI_DIR: OnceLock<std::path::PathBuf> = OnceLock::new();

extern "C" fn remove_pki_dir() {
    if let Some(dir) = PKI_DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The PKI, made on first use.
pub fn pki() -> &'static Pki {
    static P: OnceLock<Pki> = OnceLock::new();
    P.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("images-pki-")
            .tempdir()
            .unwrap()
            .keep();
        PKI_DIR.set(dir.clone()).unwrap();
        // SAFETY: registers a plain function that only reads a OnceLock.
        unsafe { libc::atexit(remove_pki_dir) };
        std::fs::write(dir.join("ca.cnf"), CNF).unwrap();
        std::fs::write(dir.join("crl.cnf"), CRL_CNF).unwrap();
        let d = dir.as_path();
        run(
            d,
            &[
                "req",
                "-x509",
                "-new",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "3650",
                "-sha256",
                "-subj",
                CA_DN,
                "-config",
                "ca.cnf",
                "-extensions",
                "v3_ca",
            ],
        );
        let issue = |name: &str, dn: &str, ext: &str, ca: &str| {
            run(
                d,
                &[
                    "req",
                    "-new",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.csr"),
                    "-subj",
                    dn,
                    "-config",
                    "ca.cnf",
                ],
            );
            run(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &format!("{name}.csr"),
                    "-CA",
                    &format!("{ca}.pem"),
                    "-CAkey",
                    &format!("{ca}.key"),
                    "-CAcreateserial",
                    "-days",
                    "365",
                    "-sha256",
                    "-extfile",
                    "ca.cnf",
                    "-extensions",
                    ext,
                    "-out",
                    &format!("{name}.pem"),
                ],
            );
        };
        issue("endorser", ENDORSER_DN, "v3_smime", "ca");
        issue("hostonly", ENDORSER_DN, "v3_host", "ca");
        issue("revoked", REVOKED_DN, "v3_smime", "ca");
        // A TLS server certificate for 127.0.0.1 (https test servers).
        issue(
            "server",
            "/DC=ORG/DC=TEST-GRID/CN=127.0.0.1",
            "v3_server",
            "ca",
        );
        // Another CA with the same DN as ours, and an impostor endorser.
        run(
            d,
            &[
                "req",
                "-x509",
                "-new",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "other.key",
                "-out",
                "other.pem",
                "-days",
                "3650",
                "-sha256",
                "-subj",
                CA_DN,
                "-config",
                "ca.cnf",
                "-extensions",
                "v3_ca",
            ],
        );
        issue("impostor", ENDORSER_DN, "v3_smime", "other");
        // CRL revoking `revoked`.
        std::fs::create_dir_all(d.join("db")).unwrap();
        std::fs::write(d.join("db/index.txt"), "").unwrap();
        std::fs::write(d.join("db/crlnumber"), "1000\n").unwrap();
        run(d, &["ca", "-config", "crl.cnf", "-revoke", "revoked.pem"]);
        run(
            d,
            &["ca", "-config", "crl.cnf", "-gencrl", "-out", "crl.pem"],
        );
        let hash = |pem: &str| {
            let out = Command::new("openssl")
                .args(["x509", "-hash", "-noout", "-in", pem])
                .current_dir(d)
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        };
        let h = hash("ca.pem");
        for (sub, crl) in [("certificates", true), ("certificates-nocrl", false)] {
            let c = d.join(sub);
            std::fs::create_dir_all(&c).unwrap();
            std::fs::copy(d.join("ca.pem"), c.join("TestGridCA.pem")).unwrap();
            std::os::unix::fs::symlink("TestGridCA.pem", c.join(format!("{h}.0"))).unwrap();
            if crl {
                std::fs::copy(d.join("crl.pem"), c.join(format!("{h}.r0"))).unwrap();
            }
        }
        let c = d.join("certificates-other");
        std::fs::create_dir_all(&c).unwrap();
        let ho = hash("other.pem");
        std::fs::copy(d.join("other.pem"), c.join(format!("{ho}.0"))).unwrap();
        Pki { dir }
    })
}
