//! Unit tests of loading and validation, on files in a temporary directory.
//! (The exact operator-facing output is golden-tested in tests/config.)

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use super::*;
use crate::openstack::access::{AccessToken, Credential, DomainRef, Interface, ProjectRef};

/// A temporary site directory; `@DIR@` in file texts is replaced by it.
struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    fn new() -> Self {
        Dir {
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> String {
        self.tmp.path().to_str().unwrap().to_string()
    }

    /// Write a file, mode 0600.
    fn file(&self, name: &str, text: &str) -> PathBuf {
        self.file_mode(name, text, 0o600)
    }

    fn file_mode(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        let p = self.tmp.path().join(name);
        std::fs::write(&p, text.replace("@DIR@", &self.path())).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    fn load(&self, config: &str) -> Result<Loaded, ConfigErrors> {
        let p = self.file("appliance.yaml", config);
        load_with(
            &p,
            &Env {
                os_client_config_file: None,
                home: Some(self.tmp.path().into()),
            },
        )
    }

    /// Load a configuration that must fail; its errors as lines.
    fn errors(&self, config: &str) -> Vec<String> {
        match self.load(config) {
            Ok(l) => panic!("expected errors, loaded: {:?}", l.config),
            Err(e) => e
                .errors
                .iter()
                .map(|e| self.strip(&e.to_string()))
                .collect(),
        }
    }

    /// Load a configuration that must succeed.
    fn ok(&self, config: &str) -> Loaded {
        self.load(config)
            .unwrap_or_else(|e| panic!("{}", self.strip(&e.to_string())))
    }

    fn strip(&self, s: &str) -> String {
        s.replace(&format!("{}/", self.path()), "")
    }
}

fn warnings(d: &Dir, l: &Loaded) -> Vec<String> {
    l.warnings.iter().map(|w| d.strip(w)).collect()
}

const HEAD: &str = "schema-version: 2\nsite:\n  gocdb: S\n  endpoint: https://keystone.example.org:5000/v3\nsecrets-file: @DIR@/secrets.yaml\n";
const VOS: &str = "vos:\n  - name: ops\n    projects:\n      - id: p-ops\n";
const PASSWORD_AUTH: &str =
    "openstack:\n  auth:\n    type: password\n    username: u\n    user-domain-name: Default\n";

fn config(parts: &[&str]) -> String {
    parts.concat()
}

#[test]
fn example_with_secrets_gives_cloud_and_vo_access() {
    let d = Dir::new();
    d.file("secrets.yaml", "openstack:\n  password: pw\n");
    let text = example().replace("/etc/fedcloud-appliance/secrets.yaml", "@DIR@/secrets.yaml");
    let l = d.ok(&text);
    assert_eq!(warnings(&d, &l), Vec::<String>::new());
    let a = l.cloud_access().unwrap();
    assert_eq!(a.auth_url.as_str(), "https://keystone.example.org:5000/v3");
    assert_eq!(a.region.as_deref(), Some("RegionOne"));
    assert_eq!(a.interface, Interface::Public);
    assert_eq!(a.timeout, std::time::Duration::from_secs(60));
    assert_eq!(a.retries, 4);
    assert_eq!(
        a.tls.ca_dir.as_deref(),
        Some(std::path::Path::new("/etc/grid-security/certificates"))
    );
    assert!(!a.tls.insecure);
    let Credential::Password {
        username,
        user_domain,
        password,
        project,
    } = &a.credential
    else {
        panic!("{:?}", a.credential)
    };
    assert_eq!(username, "fedcloud");
    assert_eq!(user_domain, &DomainRef::Name("Default".into()));
    assert_eq!(password.expose(), "pw");
    assert_eq!(
        project,
        &Some(ProjectRef::Name {
            name: "fedcloud-admin".into(),
            domain: DomainRef::Name("Default".into())
        })
    );
    assert_eq!(l.vos().len(), 2);
    let ops = l.vo_access(&l.vos()[0]).unwrap();
    let Credential::Password { project, .. } = &ops.credential else {
        panic!()
    };
    assert_eq!(
        project,
        &Some(ProjectRef::Id("0123456789abcdef0123456789abcdef".into()))
    );
    assert_eq!(
        l.vos()[1].projects,
        [ProjectRef::Name {
            name: "vo-example".into(),
            domain: DomainRef::Name("Default".into())
        }]
    );
    assert_eq!(
        l.config.paths.spool,
        PathBuf::from("/var/spool/apel/outgoing/openstack")
    );
    assert_eq!(l.config.components.info.schedule, "*:0/30");
}

#[test]
fn missing_secrets_file_is_a_warning_then_an_error_at_use() {
    let d = Dir::new();
    let l = d.ok(&config(&[HEAD, PASSWORD_AUTH, VOS]));
    assert_eq!(
        warnings(&d, &l),
        ["secrets.yaml: openstack.password: secret not found (the secrets file does not exist); \
          create secrets.yaml with mode 0600 holding `openstack: {password: ...}`"]
    );
    let e = l.cloud_access().unwrap_err();
    assert_eq!(
        d.strip(&e.to_string()),
        "secrets.yaml: secret openstack.password not found; create secrets.yaml with mode 0600 holding `openstack: {password: ...}`"
    );
    let err = anyhow::Error::from(e);
    assert_eq!(
        crate::exit::outcome_of_error(&err),
        crate::exit::Outcome::Usage
    );
    assert!(l.vo_access(&l.vos()[0]).is_err());
}

#[test]
fn auth_url_defaults_to_the_site_endpoint() {
    let d = Dir::new();
    d.file("secrets.yaml", "openstack: {password: pw}\n");
    let l = d.ok(&config(&[HEAD, PASSWORD_AUTH, VOS]));
    assert_eq!(
        l.cloud_access().unwrap().auth_url.as_str(),
        "https://keystone.example.org:5000/v3"
    );
}

#[test]
fn exactly_one_of_auth_and_cloud() {
    let d = Dir::new();
    assert_eq!(
        d.errors(&config(&[HEAD, "openstack:\n  region: R\n", VOS])),
        ["appliance.yaml:6:1: openstack.auth: missing `openstack.auth` or `openstack.cloud`; \
          give the Keystone credential inline (`auth`) or name a cloud of clouds.yaml (`cloud`); see `appliance config example`"]
    );
    assert_eq!(
        d.errors(&config(&[HEAD, VOS])),
        ["appliance.yaml:1:1: openstack: missing `openstack.auth` or `openstack.cloud`; \
          give the Keystone credential inline (`auth`) or name a cloud of clouds.yaml (`cloud`); see `appliance config example`"]
    );
    let both = config(&[HEAD, PASSWORD_AUTH, "  cloud: c\n", VOS]);
    assert_eq!(
        d.errors(&both),
        ["appliance.yaml:11:3: openstack.cloud: `openstack.auth` and `openstack.cloud` cannot both be given; \
          keep `auth` (its secret in secrets-file) or `cloud` (credentials in clouds.yaml), not both"]
    );
}

#[test]
fn required_and_foreign_keys_per_auth_type() {
    let d = Dir::new();
    let errs = d.errors(&config(&[
        HEAD,
        "openstack:\n  auth:\n    type: password\n    project-name: p\n    access-token-file: /t\n",
        VOS,
    ]));
    assert_eq!(
        errs,
        [
            "appliance.yaml:7:3: openstack.auth.username: missing required key `username`",
            "appliance.yaml:7:3: openstack.auth.user-domain-name: missing `user-domain-name` or `user-domain-id`; the user's domain is needed, e.g. `user-domain-name: Default`",
            "appliance.yaml:9:5: openstack.auth.project-name: missing `project-domain-name` or `project-domain-id` for project `p`; a project name needs its domain, or use `project-id` instead",
            "appliance.yaml:10:5: openstack.auth.access-token-file: `access-token-file` is not used by auth type `password`; remove it, or change the auth type",
        ]
    );
    let errs = d.errors(&config(&[
        HEAD,
        "openstack:\n  auth:\n    type: v3applicationcredential\n    application-credential-id: a\n    application-credential-name: n\n",
        VOS,
    ]));
    assert_eq!(
        errs,
        ["appliance.yaml:10:5: openstack.auth.application-credential-name: give `application-credential-id` or `application-credential-name`, not both"]
    );
    let errs = d.errors(&config(&[
        HEAD,
        "openstack:\n  auth:\n    type: v3applicationcredential\n    application-credential-name: n\n    project-id: x\n",
        VOS,
    ]));
    assert_eq!(
        errs,
        [
            "appliance.yaml:7:3: openstack.auth.username: missing `username`: an application credential given by name needs its user",
            "appliance.yaml:7:3: openstack.auth.user-domain-name: missing `user-domain-name` or `user-domain-id`; the user's domain is needed, e.g. `user-domain-name: Default`",
            "appliance.yaml:10:5: openstack.auth.project-id: `project-id` is not used by auth type `v3applicationcredential`; remove it, or change the auth type",
        ]
    );
    let errs = d.errors(&config(&[
        HEAD,
        "openstack:\n  auth:\n    type: v3oidcaccesstoken\n",
        VOS,
    ]));
    assert_eq!(
        errs,
        ["appliance.yaml:7:3: openstack.auth.identity-provider: missing required key `identity-provider`; EGI Check-in is registered in Keystone as `egi.eu`"]
    );
    let errs = d.errors(&config(&[
        HEAD,
        "openstack:\n  auth:\n    username: u\n",
        VOS,
    ]));
    assert_eq!(
        errs,
        ["appliance.yaml:7:3: openstack.auth.type: missing required key `type`; one of: password, v3applicationcredential, v3oidcaccesstoken, token"]
    );
    let errs = d.errors(&config(&[
        HEAD,
        "openstack:\n  auth:\n    type: password\n    user-id: 123\n    user-domain-id: d\n    user-domain-name: D\n",
        VOS,
    ]));
    assert_eq!(
        errs,
        [
            "appliance.yaml:7:3: openstack.auth.username: missing required key `username`",
            "appliance.yaml:9:5: openstack.auth.user-id: `user-id` is not supported yet: the OpenStack client logs users in by name and domain; use `username` with `user-domain-name`",
            "appliance.yaml:10:5: openstack.auth.user-domain-id: give `user-domain-name` or `user-domain-id`, not both",
        ]
    );
}

#[test]
fn token_and_oidc_credentials() {
    let d = Dir::new();
    d.file(
        "secrets.yaml",
        "openstack: {token: tok}\nvos:\n  vo2: {access-token: at}\n",
    );
    let l = d.ok(&config(&[
        HEAD,
        "openstack:\n  auth:\n    type: token\n    project-id: admin-p\n",
        VOS,
        "  - name: vo2\n    projects: [{id: p2}, {id: p3}]\n    auth:\n      type: v3oidcaccesstoken\n      identity-provider: egi.eu\n      auth-url: https://other.example.org/v3\n",
    ]));
    let Credential::Token { token, project } = l.cloud_access().unwrap().credential else {
        panic!()
    };
    assert_eq!(token.expose(), "tok");
    assert_eq!(project, Some(ProjectRef::Id("admin-p".into())));
    let vo2 = l.vo_access(&l.vos()[1]).unwrap();
    assert_eq!(vo2.auth_url.as_str(), "https://other.example.org/v3");
    let Credential::OidcAccessToken {
        identity_provider,
        protocol,
        access_token,
        project,
    } = vo2.credential
    else {
        panic!()
    };
    assert_eq!(
        (identity_provider.as_str(), protocol.as_str()),
        ("egi.eu", "openid")
    );
    let AccessToken::Value(t) = access_token else {
        panic!()
    };
    assert_eq!(t.expose(), "at");
    assert_eq!(project, Some(ProjectRef::Id("p2".into())));
}

#[test]
fn per_vo_auth_inherits_type_and_url_and_takes_its_own_secret() {
    let d = Dir::new();
    d.file(
        "secrets.yaml",
        "openstack: {password: pw}\nvos:\n  vo2: {password: pw2}\n",
    );
    let l = d.ok(&config(&[
        HEAD,
        PASSWORD_AUTH,
        VOS,
        "  - name: vo2\n    projects: [{id: p2}]\n    auth:\n      username: other\n      user-domain-id: default\n",
    ]));
    let a = l.vo_access(&l.vos()[1]).unwrap();
    let Credential::Password {
        username,
        user_domain,
        password,
        project,
    } = a.credential
    else {
        panic!()
    };
    assert_eq!((username.as_str(), password.expose()), ("other", "pw2"));
    assert_eq!(user_domain, DomainRef::Id("default".into()));
    assert_eq!(project, Some(ProjectRef::Id("p2".into())));
    assert_eq!(a.auth_url.as_str(), "https://keystone.example.org:5000/v3");
}

#[test]
fn vo_rules() {
    let d = Dir::new();
    let errs = d.errors(&config(&[
        HEAD,
        PASSWORD_AUTH,
        "vos:\n  - name: a\n    projects: [{id: p1}, {id: p1}]\n  - name: b b\n    projects: [{id: p2}]\n  - name: c\n    projects: [{id: p1}]\n  - name: d\n    projects: [{}]\n  - name: e\n",
    ]));
    assert_eq!(
        errs,
        [
            "appliance.yaml:13:26: vos[0].projects[1]: project p1 is listed twice (first on line 13)",
            "appliance.yaml:14:5: vos[1].name: `b b` is not a VO name APEL records can carry: ` ` is white space or a control character; APEL strips values and a line break ends a record line; use the VO's registered name (letters, digits, `.`, `-`, `_`), e.g. `vo.access.egi.eu`",
            "appliance.yaml:17:16: vos[2].projects[0]: project p1 already serves VO `a` (line 13); a project serves one VO: accounting and the information system map projects to VOs",
            "appliance.yaml:19:16: vos[3].projects[0]: missing `id` or `name`; e.g. `- id: <project id>`",
            "appliance.yaml:20:5: vos[4].projects: missing required key `projects`",
        ]
    );
    let errs = d.errors(&config(&[HEAD, PASSWORD_AUTH, "vos: []\n"]));
    assert_eq!(
        errs,
        ["appliance.yaml:11:1: vos: no VOs configured; add at least one VO with its projects"]
    );
}

#[test]
fn inline_secrets_name_the_secrets_file_section() {
    let d = Dir::new();
    let errs = d.errors(&config(&[
        HEAD,
        PASSWORD_AUTH,
        "    secret: x\n",
        VOS,
        "  - name: vo2\n    projects: [{id: p2}]\n    auth:\n      type: token\n      token: t\n",
    ]));
    assert_eq!(
        errs,
        [
            "appliance.yaml:11:5: openstack.auth.secret: secrets are not allowed in this file; move it to the secrets file secrets.yaml (mode 0600) under `openstack` as one of password, application-credential-secret, access-token, token",
            "appliance.yaml:20:7: vos[1].auth.token: secrets are not allowed in this file; move it to the secrets file secrets.yaml (mode 0600) under `vos.vo2.token`",
        ]
    );
}

#[test]
fn secrets_file_rules() {
    let d = Dir::new();
    let cfg = config(&[HEAD, PASSWORD_AUTH, VOS]);
    d.file_mode("secrets.yaml", "openstack: {password: pw}\n", 0o644);
    let errs = d.errors(&cfg);
    assert_eq!(
        errs,
        ["secrets.yaml: world-readable secret file (mode 0644): only its owner may read it; run `chmod 600 secrets.yaml`"]
    );
    d.file(
        "secrets.yaml",
        "openstack: {token: t}\nvos: {ghost: {password: x}}\n",
    );
    let e = d.load(&cfg).unwrap_err();
    let lines: Vec<String> = e.errors.iter().map(|e| d.strip(&e.to_string())).collect();
    assert_eq!(
        lines,
        ["secrets.yaml:1:1: openstack.password: secret not found in the secrets file; add `openstack: {password: ...}`"]
    );
    let w: Vec<String> = e.warnings.iter().map(|w| d.strip(w)).collect();
    assert_eq!(
        w,
        [
            "secrets.yaml:1:13: openstack.token: not used: the site credential needs `password`",
            "secrets.yaml:2:15: vos.ghost.password: not used: there is no VO `ghost` in the configuration",
        ]
    );
    d.file("secrets.yaml", "openstack: {password: [a]}\n");
    assert_eq!(
        d.errors(&cfg),
        ["secrets.yaml:1:23: openstack.password: expected the secret as a string"]
    );
}

#[test]
fn paths_must_be_absolute_and_insecure_warns() {
    let d = Dir::new();
    d.file("secrets.yaml", "openstack: {password: pw}\n");
    let errs = d.errors(&config(&[
        HEAD,
        PASSWORD_AUTH,
        "  ca-file: ca.pem\n",
        VOS,
        "paths:\n  image-data: data\n",
    ]));
    assert_eq!(
        errs,
        [
            "appliance.yaml:11:3: openstack.ca-file: `ca.pem` is not an absolute path; write the full path, starting with `/`",
            "appliance.yaml:17:3: paths.image-data: `data` is not an absolute path; write the full path, starting with `/`",
        ]
    );
    let l = d.ok(&config(&[HEAD, PASSWORD_AUTH, "  insecure: true\n", VOS]));
    assert!(l.cloud_access().unwrap().tls.insecure);
    assert_eq!(l.warnings.len(), 1);
    assert!(
        l.warnings[0].contains("openstack.insecure: TLS certificate verification is OFF"),
        "{:?}",
        l.warnings
    );
}

#[test]
fn schema_version_and_empty_files() {
    let d = Dir::new();
    assert_eq!(
        d.errors("schema-version: 3\nwhatever: 1\n"),
        ["appliance.yaml:1:1: schema-version: schema version 3 is newer than this release reads (2); run the release that wrote it, or restore the configuration from a backup"]
    );
    assert_eq!(
        d.errors("# nothing\n"),
        ["appliance.yaml: the configuration is empty; start from `appliance config example`"]
    );
    let errs = d.errors(&config(&[&HEAD[18..], PASSWORD_AUTH, VOS]));
    assert_eq!(
        errs[0],
        "appliance.yaml:1:1: schema-version: missing required key `schema-version`; add `schema-version: 2` at the top of the file"
    );
}

#[test]
fn catch_all_oidc_site() {
    let d = Dir::new();
    let site = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/config/catch-all/fedcloud.srce.hr.yaml"
    ))
    .unwrap();
    d.file("site.yaml", &site);
    d.file("secrets.yaml", "openstack:\n  access-token: at\n");
    let l = d.ok(
        "schema-version: 2\nsite:\n  catch-all: @DIR@/site.yaml\nsecrets-file: @DIR@/secrets.yaml\nopenstack:\n  region: R\n",
    );
    assert_eq!(warnings(&d, &l), Vec::<String>::new());
    assert_eq!(l.config.site.gocdb, "fedcloud.srce.hr");
    let ca = l.config.site.catch_all.as_ref().unwrap();
    assert!(ca.images_sync);
    assert_eq!(ca.image_formats, ["qcow2", "raw"]);
    let names: Vec<&str> = l.vos().iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["ops", "vo.epos-eric.eu", "cloud.egi.eu"]);
    assert_eq!(
        l.vos()[2].projects,
        [ProjectRef::Id("258f0bdb2c4c4dba9eb3b96823e20b09".into())]
    );
    let a = l.vo_access(&l.vos()[1]).unwrap();
    assert_eq!(a.auth_url.as_str(), "https://cloud.cro-ngi.hr:5000/v3/");
    assert_eq!(a.region.as_deref(), Some("R"));
    let Credential::OidcAccessToken {
        identity_provider,
        protocol,
        project,
        ..
    } = a.credential
    else {
        panic!()
    };
    assert_eq!(
        (identity_provider.as_str(), protocol.as_str()),
        ("egi.eu", "openid")
    );
    assert_eq!(
        project,
        Some(ProjectRef::Id("44a3a5f9c2f44940acc98a8aee3875ba".into()))
    );
}

#[test]
fn catch_all_application_credential_site() {
    let d = Dir::new();
    let site = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/config/catch-all/CREODIAS.yaml"
    ))
    .unwrap();
    d.file("site.yaml", &(site + "region: WAW4-1\nprotocol: oidc\n"));
    d.file(
        "secrets.yaml",
        "openstack:\n  application-credential-secret: s\n",
    );
    let l = d.ok(
        "schema-version: 2\nsite:\n  catch-all: @DIR@/site.yaml\nsecrets-file: @DIR@/secrets.yaml\nopenstack:\n  auth:\n    application-credential-id: ac\n",
    );
    assert_eq!(l.warnings.len(), 2, "{:?}", l.warnings);
    assert!(l.vos().iter().all(|v| v.projects.is_empty()));
    let a = l.vo_access(&l.vos()[0]).unwrap();
    assert_eq!(a.region.as_deref(), Some("WAW4-1"));
    let Credential::ApplicationCredential { id, secret, .. } = a.credential else {
        panic!()
    };
    assert_eq!((id.as_deref(), secret.expose()), (Some("ac"), "s"));
}

#[test]
fn catch_all_without_project_id_needs_an_application_credential() {
    let d = Dir::new();
    d.file(
        "site.yaml",
        "gocdb: X\nendpoint: https://k.example.org/v3\nvos:\n  - name: ops\n    auth: {}\n",
    );
    let errs = d.errors("schema-version: 2\nsite:\n  catch-all: @DIR@/site.yaml\nsecrets-file: @DIR@/secrets.yaml\n");
    assert_eq!(
        errs,
        ["site.yaml:5:5: vos[0].auth: VO `ops` has no `project_id`; add `project_id: <id of the project serving the VO>`"]
    );
    let errs = d.errors("schema-version: 2\nsite:\n  catch-all: @DIR@/missing.yaml\n");
    assert_eq!(
        errs,
        ["appliance.yaml:3:3: site.catch-all: missing.yaml: cannot read the catch-all site file: No such file or directory (os error 2)"]
    );
}

#[test]
fn clouds_yaml_entry() {
    let d = Dir::new();
    d.file_mode(
        "clouds.yaml",
        "clouds:\n  other: {auth: {}}\n  site:\n    auth_type: v3password\n    auth:\n      auth_url: https://ks.example.org/v3\n      username: u\n      password: pw\n      project_name: p\n      domain_name: Dom\n      extra_thing: 1\n    region_name: R1\n    interface: internal\n    cacert: /ca.pem\n    verify: false\n    identity_api_version: 3\n",
        0o640,
    );
    let l = d.ok(&config(&[
        HEAD,
        "openstack:\n  cloud: site\n  clouds-file: @DIR@/clouds.yaml\n",
        VOS,
    ]));
    assert_eq!(
        warnings(&d, &l),
        [
            "clouds.yaml: group-readable clouds.yaml holds a secret (mode 0640); run `chmod 600 clouds.yaml`",
            "clouds.yaml:11:7: clouds.site.auth.extra_thing: unknown key, ignored; known keys here: auth_url, username, user_id, user_domain_name, user_domain_id, project_id, project_name, project_domain_name, project_domain_id, application_credential_id, application_credential_name, identity_provider, protocol, domain_name, domain_id, password, application_credential_secret, access_token, token",
            "clouds.yaml:15:5: clouds.site.verify: TLS certificate verification is OFF for every OpenStack request: anyone on the network path can pose as Keystone and take the credentials; remove `verify: false` and trust the site's CA with `cacert`",
        ]
    );
    let a = l.cloud_access().unwrap();
    assert_eq!(a.auth_url.as_str(), "https://ks.example.org/v3");
    assert_eq!(a.region.as_deref(), Some("R1"));
    assert_eq!(a.interface, Interface::Internal);
    assert!(a.tls.insecure);
    assert_eq!(
        a.tls.ca_file.as_deref(),
        Some(std::path::Path::new("/ca.pem"))
    );
    let Credential::Password {
        username,
        user_domain,
        password,
        project,
    } = a.credential
    else {
        panic!()
    };
    assert_eq!((username.as_str(), password.expose()), ("u", "pw"));
    assert_eq!(user_domain, DomainRef::Name("Dom".into()));
    assert_eq!(
        project,
        Some(ProjectRef::Name {
            name: "p".into(),
            domain: DomainRef::Name("Dom".into())
        })
    );
}

#[test]
fn clouds_yaml_without_secret_uses_the_secrets_file() {
    let d = Dir::new();
    d.file(
        "clouds.yaml",
        "clouds:\n  site:\n    auth_type: v3applicationcredential\n    auth:\n      auth_url: https://ks.example.org/v3\n      application_credential_id: ac\n",
    );
    d.file(
        "secrets.yaml",
        "openstack: {application-credential-secret: from-secrets}\n",
    );
    let l = d.ok(&config(&[
        HEAD,
        "openstack:\n  cloud: site\n  clouds-file: @DIR@/clouds.yaml\n",
        VOS,
    ]));
    let Credential::ApplicationCredential { secret, .. } = l.cloud_access().unwrap().credential
    else {
        panic!()
    };
    assert_eq!(secret.expose(), "from-secrets");
    let errs = d.errors(&config(&[
        HEAD,
        "openstack:\n  cloud: sitee\n  clouds-file: @DIR@/clouds.yaml\n",
        VOS,
    ]));
    assert_eq!(
        errs,
        ["clouds.yaml:1:1: clouds: no cloud named `sitee`; did you mean `site`?"]
    );
    let errs = d.errors(&config(&[
        HEAD,
        "openstack:\n  clouds-file: @DIR@/clouds.yaml\n",
        VOS,
    ]));
    assert_eq!(
        errs,
        [
            "appliance.yaml:6:1: openstack.auth: missing `openstack.auth` or `openstack.cloud`; give the Keystone credential inline (`auth`) or name a cloud of clouds.yaml (`cloud`); see `appliance config example`",
            "appliance.yaml:7:3: openstack.clouds-file: `clouds-file` is only used with `cloud`; add `cloud: <name>` or remove `clouds-file`",
        ]
    );
}

#[test]
fn clouds_yaml_search_order() {
    let d = Dir::new();
    let f = d.file(
        "elsewhere.yaml",
        "clouds:\n  site:\n    auth:\n      auth_url: https://ks.example.org/v3\n      token: t\n    auth_type: token\n",
    );
    let cfg = d.file(
        "appliance.yaml",
        &config(&[HEAD, "openstack:\n  cloud: site\n", VOS]),
    );
    let env = Env {
        os_client_config_file: Some(f.clone()),
        home: None,
    };
    let l = load_with(&cfg, &env).unwrap();
    let CredentialSource::Cloud { file, .. } = &l.config.openstack.source else {
        panic!()
    };
    assert_eq!(file, &f);
    assert!(matches!(
        l.cloud_access().unwrap().credential,
        Credential::Token { .. }
    ));
    assert_eq!(
        clouds::search_path(
            Some(std::path::Path::new("/x.yaml")),
            Some(std::path::Path::new("/home/u"))
        ),
        [
            PathBuf::from("/x.yaml"),
            PathBuf::from("clouds.yaml"),
            PathBuf::from("/home/u/.config/openstack/clouds.yaml"),
            PathBuf::from("/etc/openstack/clouds.yaml"),
        ]
    );
}

#[test]
fn show_redacts_every_secret() {
    let d = Dir::new();
    d.file(
        "secrets.yaml",
        "openstack: {password: hunter2}\nvos:\n  vo2: {application-credential-secret: sekrit}\n",
    );
    let l = d.ok(&config(&[
        HEAD,
        PASSWORD_AUTH,
        VOS,
        "  - name: vo2\n    projects: [{name: p2, domain-id: d2}]\n    auth:\n      type: v3applicationcredential\n      application-credential-id: ac\n",
    ]));
    let out = show(&l);
    assert!(!out.contains("hunter2") && !out.contains("sekrit"), "{out}");
    assert!(out.contains("    password: <redacted>\n"), "{out}");
    assert!(
        out.contains("    application-credential-secret: <redacted>\n"),
        "{out}"
    );
    assert!(out.contains("  - name: p2\n    domain-id: d2\n"), "{out}");
    let json = show_json(&l).to_string();
    assert!(
        !json.contains("hunter2") && !json.contains("sekrit"),
        "{json}"
    );
    assert!(!format!("{l:?}").contains("hunter2"));
}

#[test]
fn errors_are_sorted_by_position_within_each_file() {
    let d = Dir::new();
    let e = d
        .load(&config(&[HEAD, "zzz: 1\n", PASSWORD_AUTH, "aaa: 2\n", VOS]))
        .unwrap_err();
    let lines: Vec<u32> = e.errors.iter().filter_map(|e| e.line).collect();
    let mut sorted = lines.clone();
    sorted.sort_unstable();
    assert_eq!(lines, sorted);
    assert_eq!(e.errors.len(), 2);
}

#[test]
fn settings_are_loaded_without_reading_the_secrets() {
    // What `crl refresh` and the run records read: the secrets file is
    // never opened (there, root without capabilities could not), so a
    // broken or missing one neither fails nor warns.
    let d = Dir::new();
    let cfg = d.file("appliance.yaml", &config(&[HEAD, PASSWORD_AUTH, VOS]));
    d.file_mode("secrets.yaml", "openstack: {password: pw}\n", 0o644);
    assert!(load_with(&cfg, &Env::default()).is_err());
    let l = super::load_settings(&cfg).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(warnings(&d, &l), Vec::<String>::new());
    assert!(
        l.cloud_access().is_err(),
        "no credential without the secrets"
    );
}
