//! Integration tests: `appliance config check|show|example`.
//!
//! Golden tests: each directory under `tests/fixtures/config/<case>/` holds
//! an `appliance.yaml` (plus the files it refers to) and `expected.txt`, the
//! exact stdout of `appliance --config appliance.yaml config check`. The
//! case is copied into a temporary directory (every file mode 0600, then
//! the optional `modes` file's `<octal> <file>` lines), `@DIR@` in the files
//! is replaced by that directory, the command runs there, and the directory
//! is replaced back by `@DIR@` in the output. Cases named `ok-*` must exit
//! 0, the others 2. An `expected.json` is compared with the `--json` report.
//! Run with `UPDATE_GOLDEN=1` to rewrite the expected files after a
//! deliberate change (and review the diff).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::util::appliance;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config")
}

const NOT_COPIED: &[&str] = &["expected.txt", "expected.json", "modes"];

/// Copy a case into a fresh directory, ready to run.
fn stage(case: &str) -> tempfile::TempDir {
    let src = fixtures().join(case);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_str().expect("utf-8 temp path").to_string();
    for entry in std::fs::read_dir(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display())) {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if NOT_COPIED.contains(&name.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(entry.path())
            .unwrap()
            .replace("@DIR@", &dir);
        let dst = tmp.path().join(&name);
        std::fs::write(&dst, text).unwrap();
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    if let Ok(modes) = std::fs::read_to_string(src.join("modes")) {
        for line in modes.lines().filter(|l| !l.trim().is_empty()) {
            let (mode, file) = line.split_once(' ').expect("`<octal> <file>`");
            let mode = u32::from_str_radix(mode, 8).expect("octal mode");
            std::fs::set_permissions(tmp.path().join(file), std::fs::Permissions::from_mode(mode))
                .unwrap();
        }
    }
    tmp
}

/// Run `config check` (optionally `--json`) in a staged case; stdout with
/// the directory replaced by `@DIR@`, and the exit code.
fn check(dir: &Path, json: bool) -> (String, i32) {
    let mut cmd = appliance();
    cmd.current_dir(dir)
        .env_remove("OS_CLIENT_CONFIG_FILE")
        .env("HOME", dir)
        .args(["--config", "appliance.yaml"]);
    if json {
        cmd.arg("--json");
    }
    let out = cmd
        .args(["config", "check"])
        .output()
        .expect("run appliance");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
    let dir = dir.to_str().unwrap();
    (
        stdout.replace(dir, "@DIR@"),
        out.status.code().unwrap_or(-1),
    )
}

fn compare(case: &str, file: &str, got: &str) {
    crate::util::golden(
        &fixtures().join(case).join(file),
        &format!("{case}/{file}"),
        got,
    );
}

fn golden(case: &str) {
    let dir = stage(case);
    let (stdout, code) = check(dir.path(), false);
    let want_code = if case.starts_with("ok-") { 0 } else { 2 };
    assert_eq!(code, want_code, "exit code of {case}; stdout:\n{stdout}");
    compare(case, "expected.txt", &stdout);
    if fixtures().join(case).join("expected.json").exists() {
        let (json, code) = check(dir.path(), true);
        assert_eq!(code, want_code, "exit code of {case} --json");
        let _: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
        compare(case, "expected.json", &json);
    }
}

macro_rules! golden {
    ($($name:ident => $case:literal,)*) => {
        $(
            #[test]
            fn $name() {
                golden($case);
            }
        )*

        /// Every case directory has a test, and every test a directory.
        #[test]
        fn golden_cases_are_all_listed() {
            let listed = [$($case),*];
            let mut on_disk: Vec<String> = std::fs::read_dir(fixtures())
                .unwrap()
                .map(|e| e.unwrap())
                .filter(|e| e.path().join("appliance.yaml").exists())
                .map(|e| e.file_name().into_string().unwrap())
                .collect();
            on_disk.sort();
            let mut listed: Vec<String> = listed.iter().map(|s| s.to_string()).collect();
            listed.sort();
            assert_eq!(listed, on_disk);
        }
    };
}

golden! {
    golden_yaml_syntax => "yaml-syntax",
    golden_unknown_key => "unknown-key",
    golden_wrong_type => "wrong-type",
    golden_missing_required => "missing-required",
    golden_bad_enum => "bad-enum",
    golden_bad_url => "bad-url",
    golden_secrets_unreadable => "secrets-unreadable",
    golden_secrets_world_readable => "secrets-world-readable",
    golden_inline_secret => "inline-secret",
    golden_auth_and_cloud => "auth-and-cloud",
    golden_duplicate_vo => "duplicate-vo",
    golden_vo_names => "vo-names",
    golden_vo_names_catch_all => "vo-names-catch-all",
    golden_schema_version => "schema-version",
    golden_many_errors => "many-errors",
    golden_catch_all_conflict => "catch-all-conflict",
    golden_catch_all_errors => "catch-all-errors",
    golden_clouds_unknown_cloud => "clouds-unknown-cloud",
    golden_secret_missing_key => "secret-missing-key",
    golden_ok_insecure => "ok-insecure",
    golden_ok_catch_all_creodias => "ok-catch-all-creodias",
    golden_ok_catch_all_srce => "ok-catch-all-srce",
}

#[test]
fn example_passes_check() {
    let dir = tempfile::tempdir().unwrap();
    let out = appliance().args(["config", "example"]).output().unwrap();
    assert!(out.status.success());
    let example = dir.path().join("x.yaml");
    std::fs::write(&example, &out.stdout).unwrap();
    let out = appliance()
        .current_dir(dir.path())
        .args(["--config", "x.yaml", "config", "check"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}");
    assert!(stdout.starts_with("OK: x.yaml\n"), "{stdout}");
}

#[test]
fn example_is_the_embedded_file() {
    let out = appliance().args(["config", "example"]).output().unwrap();
    let file =
        std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/config/example.yaml"))
            .unwrap();
    assert_eq!(out.stdout, file);
}

#[test]
fn show_redacts_secrets() {
    let dir = stage("ok-insecure");
    let out = appliance()
        .current_dir(dir.path())
        .args(["--config", "appliance.yaml", "config", "show"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(!stdout.contains("not-a-real-password"), "{stdout}");
    assert!(stdout.contains("    password: <redacted>\n"), "{stdout}");
    assert!(stdout.contains("  insecure: true\n"), "{stdout}");
    assert!(
        stdout.contains("# warning: appliance.yaml:10:3: openstack.insecure: "),
        "{stdout}"
    );

    let out = appliance()
        .current_dir(dir.path())
        .args(["--config", "appliance.yaml", "--json", "config", "show"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["openstack"]["auth"]["password"], "<redacted>");
    assert_eq!(
        json["vos"][0]["projects"][0]["id"],
        "0123456789abcdef0123456789abcdef"
    );
}

#[test]
fn show_of_a_bad_file_exits_2_with_every_error_on_stderr() {
    let dir = stage("duplicate-vo");
    let out = appliance()
        .current_dir(dir.path())
        .args(["--config", "appliance.yaml", "config", "show"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("error: appliance.yaml:23:5: vos[2].name: duplicate VO `ops`"),
        "{stderr}"
    );
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.contains("appliance.yaml:"))
            .count(),
        2,
        "{stderr}"
    );
}

#[test]
fn missing_config_file_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = appliance()
        .current_dir(dir.path())
        .args(["--config", "nope.yaml", "config", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "nope.yaml: cannot read the configuration: No such file or directory (os error 2); \
         write one with `appliance config example > nope.yaml` and edit it\nFAILED: nope.yaml: 1 error\n"
    );
}

#[test]
fn config_from_environment_variable() {
    let dir = stage("ok-insecure");
    let out = appliance()
        .current_dir(dir.path())
        .env("APPLIANCE_CONFIG", "appliance.yaml")
        .args(["config", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .starts_with("OK: appliance.yaml\n"));
}

#[test]
fn clouds_yaml_found_through_os_client_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let clouds = dir.path().join("my-clouds.yaml");
    std::fs::write(
        &clouds,
        "clouds:\n  site:\n    auth:\n      auth_url: https://keystone.test.example:5000/v3\n      username: u\n      password: not-a-real-password\n      user_domain_name: Default\n",
    )
    .unwrap();
    std::fs::set_permissions(&clouds, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(
        dir.path().join("appliance.yaml"),
        "schema-version: 2\nsite: {gocdb: S, endpoint: 'https://keystone.test.example:5000/v3'}\nopenstack: {cloud: site}\nvos: [{name: ops, projects: [{id: p1}]}]\n",
    )
    .unwrap();
    let out = appliance()
        .current_dir(dir.path())
        .env("OS_CLIENT_CONFIG_FILE", &clouds)
        .args(["--config", "appliance.yaml", "config", "show"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("  cloud: site\n"), "{stdout}");
    assert!(
        stdout.contains(&format!("  clouds-file: {}\n", clouds.display())),
        "{stdout}"
    );
    assert!(stdout.contains("    password: <redacted>\n"), "{stdout}");
    assert!(!stdout.contains("not-a-real-password"));
}
