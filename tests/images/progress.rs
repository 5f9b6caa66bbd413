//! Progress of `images sync` (issue #11 point 1 sd-notify, point 5 bars):
//! under a service manager (this test's own `NOTIFY_SOCKET`) a real sync
//! against the reference site sends READY, STATUS and WATCHDOG, and a
//! download stalled by the fault proxy stops the watchdog pings; on a
//! pseudo-terminal (`script`) the download draws a bar, and with pipes
//! nothing of it appears.

use std::process::{Command, Stdio};
use std::time::Duration;

use fedcloud_appliance::testsrv::{self, faults::Fault};
use url::Url;

use super::sync::{random_bytes, World};
use crate::util::{appliance, NotifySocket};

const ID: &str = "cccccccc-2222-4222-8222-000000000001";
const MB: usize = 1 << 20;

#[test]
fn sync_under_systemd_sends_ready_status_and_watchdog_and_a_stall_stops_the_pings() {
    let mut w = World::new("notify");
    let bytes = random_bytes(6 * MB);
    let mut img = w.image(ID, "notify.img", &bytes);
    // The image comes through the fault proxy: 1 MiB/s, and after 3 MiB
    // nothing for 5 s (the connection stays open), then the rest.
    let upstream = Url::parse(&format!("http://{}/", w.files.server.addr())).unwrap();
    let (proxy, faults) = testsrv::fault_proxy::spawn(upstream);
    img.url = format!("http://{proxy}/notify.img");
    w.publish_ok(&[img]);
    // The list too, answered after 0.6 s: the list phase outlasts a tick
    // of the notifier (0.25 s here), so its status is sent however fast
    // the rest of the phase is on an idle machine.
    w.list_url = Some(format!("http://{proxy}/{}.list", w.list));
    faults.push(Fault {
        delay_ms: 600,
        path_prefix: Some(format!("/{}.list", w.list)),
        ..Fault::default()
    });
    faults.push(Fault {
        throttle: Some(MB as u64),
        stall_after: Some(3 * MB as u64),
        stall_ms: 5000,
        path_prefix: Some("/notify.img".into()),
        ..Fault::default()
    });

    let mut notify = NotifySocket::bind();
    let logs = tempfile::tempdir().unwrap();
    let cfg = w.config();
    // systemd names the main process in WATCHDOG_PID: the shell's pid is
    // the appliance's after `exec`.
    let mut child = Command::new("sh")
        .args(["-c", "WATCHDOG_PID=$$ exec \"$0\" \"$@\""])
        .arg(assert_cmd::cargo::cargo_bin("appliance"))
        .arg("--config")
        .arg(&cfg)
        .args(["--json", "images", "sync"])
        .env("NOTIFY_SOCKET", &notify.path)
        .env("WATCHDOG_USEC", "1000000")
        .env_remove("JOURNAL_STREAM")
        .env_remove("APPLIANCE_LOG")
        .stdout(std::fs::File::create(logs.path().join("out")).unwrap())
        .stderr(std::fs::File::create(logs.path().join("err")).unwrap())
        .spawn()
        .unwrap();
    let code = notify.collect(&mut child, Duration::from_secs(180));
    let out = std::fs::read_to_string(logs.path().join("out")).unwrap();
    let err = std::fs::read_to_string(logs.path().join("err")).unwrap();
    let all = format!("{:#?}\nstdout:\n{out}\nstderr:\n{err}", notify.lines);
    assert_eq!(code, 0, "{all}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["sources"][0]["status"], "ok", "{all}");

    // READY first, with a status.
    assert_eq!(
        notify.lines.first().map(|l| l.1.as_str()),
        Some("READY=1"),
        "{all}"
    );
    let statuses = notify.statuses();
    let has = |s: &str| statuses.iter().any(|(_, l)| l.contains(s));
    assert!(has("verifying list notify-list"), "{all}");
    assert!(
        has("list notify-list: image 1 of 1 (cccccccc-2222-4222-8222-000000000001): 1 of 6 MB"),
        "{all}"
    );
    assert!(has("done: 1 source(s), 0 not ok"), "{all}");

    // Pings while bytes flow; none during the stall; pings again after.
    let pings = notify.times("WATCHDOG=1");
    let first_at = |s: &str| {
        statuses
            .iter()
            .find(|(_, l)| l.contains(s))
            .map(|(t, _)| *t)
            .unwrap_or_else(|| panic!("no status with `{s}`: {all}"))
    };
    let downloading = first_at(": 0 of 6 MB");
    let stalled = first_at(": 3 of 6 MB");
    let during = |a: f64, b: f64| pings.iter().filter(|t| **t > a && **t < b).count();
    assert!(
        during(downloading, stalled) >= 3,
        "pings while downloading: {all}"
    );
    assert_eq!(
        during(stalled + 0.6, stalled + 4.2),
        0,
        "pings during the stall: {all}"
    );
    assert!(
        during(stalled + 4.2, f64::MAX) >= 1,
        "pings after the stall: {all}"
    );
}

#[test]
fn a_terminal_gets_progress_bars_and_a_pipe_gets_none() {
    let mut w = World::new("bars");
    let bytes = random_bytes(3 * MB);
    let img = w.image(ID, "bars.img", &bytes);
    w.publish_ok(&[img]);
    let cfg = w.config();
    let cmdline = format!(
        "{} --config {} images sync --download-only",
        assert_cmd::cargo::cargo_bin("appliance").display(),
        cfg.display()
    );

    // On a pseudo-terminal (`script` gives the command one as stdin,
    // stdout and stderr): a byte bar for the download, and the run's line.
    w.files
        .faults
        .push(Fault::throttle(MB as u64).on_path("/bars.img"));
    let out = Command::new("script")
        .args(["-qefc", &cmdline, "/dev/null"])
        .env("TERM", "xterm")
        .env_remove("JOURNAL_STREAM")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux)");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(
        screen.contains("image 1 cccccccc-2222-4222-8222-000000000001"),
        "{screen}"
    );
    assert!(screen.contains("MiB/3.00 MiB"), "{screen}");
    assert!(screen.contains("list bars-list: image 1 of 1"), "{screen}");

    // The same download with stdout and stderr as pipes: no bar, no
    // terminal control.
    std::fs::remove_dir_all(w.dir.path().join("image-data")).unwrap();
    w.files
        .faults
        .push(Fault::throttle(MB as u64).on_path("/bars.img"));
    let out = appliance()
        .arg("--config")
        .arg(&cfg)
        .args(["images", "sync", "--download-only"])
        .env("TERM", "xterm")
        .env_remove("NOTIFY_SOCKET")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("cccccccc-2222-4222-8222-000000000001"),
        "it did download: {stdout}"
    );
    for text in [&stdout, &stderr] {
        assert!(!text.contains("MiB/"), "{text}");
        assert!(!text.contains('\u{1b}'), "{text:?}");
    }
}
