//! Integration tests: the command line itself (tree, help, exit codes).

use crate::util::appliance;

/// `appliance --help` lists the whole subcommand tree of the product.
#[test]
fn help_lists_the_whole_tree() {
    let out = appliance()
        .arg("--help")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let help = String::from_utf8(out).unwrap();
    for sub in [
        "configure",
        "accounting",
        "info",
        "images",
        "status",
        "doctor",
        "migrate",
        "import-legacy",
        "config",
    ] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(sub)),
            "`{sub}` missing from --help:\n{help}"
        );
    }
    for global in ["--config", "--json", "--log-level"] {
        assert!(help.contains(global), "{global} missing from --help");
    }
}

/// A usage error (unknown flag) is exit code 2, as clap does.
#[test]
fn usage_error_is_exit_2() {
    appliance().arg("--no-such-flag").assert().code(2);
}
