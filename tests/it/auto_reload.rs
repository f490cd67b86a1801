//! `--config.enable-auto-reload`: the modules file polled by checksum, as
//! blackbox_exporter 0.28 does, and what a changing file can do to it:
//! edits, a broken file, a Kubernetes ConfigMap's symlink swap, a deleted
//! file, a huge one, a FIFO. Every wait polls for the expected state.

use std::path::Path;

use crate::support::{lookout, request, spawn_app, write, App, PATIENCE};

const SUCCESS: &str = "blackbox_exporter_config_last_reload_successful";
const TIMESTAMP: &str = "blackbox_exporter_config_last_reload_success_timestamp_seconds";

fn gauge(app: &App, name: &str) -> f64 {
    app.metric(name)
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
}

/// Polls `check` until it holds, failing the test after [`PATIENCE`].
fn until(check: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "the expected state never came"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// lookout watching `file` every 100 ms.
fn watching(file: &Path) -> App {
    let app = spawn_app(
        &[
            "--config.file",
            file.to_str().unwrap(),
            "--config.enable-auto-reload",
            "--config.auto-reload-interval",
            "100ms",
        ],
        &[],
    );
    app.admin_until("/readyz", |r| r.status == 200);
    app
}

/// Waits until `/probe` knows `module` (or, with `known` false, no longer does).
fn until_module(app: &App, module: &str, known: bool) {
    let path = format!("/probe?module={module}&target=127.0.0.1:1");
    until(|| {
        let status = request(app.probe, "GET", &path, &[]).status;
        (status != 400) == known
    });
}

fn until_gauge(app: &App, value: f64) {
    app.admin_until("/metrics", |r| {
        r.body.contains(&format!("\n{SUCCESS} {value}\n"))
    });
}

#[test]
fn a_changed_file_is_reloaded_a_broken_one_is_not_and_a_fixed_one_is() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blackbox.yml");
    write(&file, "modules:\n  one:\n    prober: tcp\n");
    let app = watching(&file);
    assert_eq!(gauge(&app, SUCCESS), 1.0);

    write(&file, "modules:\n  two:\n    prober: tcp\n");
    until_module(&app, "two", true);
    until_module(&app, "one", false);
    assert_eq!(gauge(&app, SUCCESS), 1.0);
    app.log_line("configuration file changed; reloading");

    // Broken: the modules in force stay, the gauge says so.
    write(&file, "modules:\n  three:\n    prober: nope\n");
    until_gauge(&app, 0.0);
    until_module(&app, "two", true);
    until_module(&app, "three", false);
    app.log_line("unknown variant `nope`");
    assert!(app.admin("GET", "/config").body.contains("    two:\n"));

    // Fixed with new content: loaded.
    write(&file, "modules:\n  four:\n    prober: tcp\n");
    until_gauge(&app, 1.0);
    until_module(&app, "four", true);

    // Broken again, then put back exactly as it was: unchanged, so 1 again.
    write(&file, "modules: {broken\n");
    until_gauge(&app, 0.0);
    write(&file, "modules:\n  four:\n    prober: tcp\n");
    until_gauge(&app, 1.0);
    until_module(&app, "four", true);
}

#[test]
fn an_unchanged_file_is_not_reloaded_but_counts_as_a_success() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blackbox.yml");
    write(&file, "modules:\n  one:\n    prober: tcp\n");
    let app = watching(&file);
    let first = gauge(&app, TIMESTAMP);
    // Same bytes, new modification time.
    write(&file, "modules:\n  one:\n    prober: tcp\n");
    // Checks happen: blackbox_exporter moves the timestamp on each.
    until(|| gauge(&app, TIMESTAMP) > first);
    let second = gauge(&app, TIMESTAMP);
    until(|| gauge(&app, TIMESTAMP) > second);
    assert!(
        !app.logs()
            .iter()
            .any(|l| l.contains("configuration reloaded")),
        "{:?}",
        app.logs()
    );
    assert_eq!(gauge(&app, SUCCESS), 1.0);
}

/// A Kubernetes ConfigMap volume: `blackbox.yml -> ..data/blackbox.yml`,
/// `..data -> ..<timestamp>`; an update writes a new directory and swaps
/// `..data` with a rename, then deletes the old directory.
struct ConfigMap {
    dir: tempfile::TempDir,
    generation: u32,
}

impl ConfigMap {
    fn new(text: &str) -> Self {
        let mut map = Self {
            dir: tempfile::tempdir().unwrap(),
            generation: 0,
        };
        map.update(text);
        std::os::unix::fs::symlink("..data/blackbox.yml", map.file()).unwrap();
        map
    }

    fn file(&self) -> std::path::PathBuf {
        self.dir.path().join("blackbox.yml")
    }

    fn update(&mut self, text: &str) {
        let root = self.dir.path();
        let old = format!("..2024_01_01_00_00_0{}", self.generation);
        self.generation += 1;
        let new = format!("..2024_01_01_00_00_0{}", self.generation);
        std::fs::create_dir(root.join(&new)).unwrap();
        write(&root.join(&new).join("blackbox.yml"), text);
        std::os::unix::fs::symlink(&new, root.join("..data_tmp")).unwrap();
        std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
        let _ = std::fs::remove_dir_all(root.join(old));
    }
}

#[test]
fn a_configmap_update_by_symlink_swap_is_reloaded() {
    let mut map = ConfigMap::new("modules:\n  one:\n    prober: tcp\n");
    let app = watching(&map.file());
    until_module(&app, "one", true);
    map.update("modules:\n  two:\n    prober: tcp\n");
    until_module(&app, "two", true);
    until_module(&app, "one", false);
    map.update("modules:\n  two:\n    prober: nope\n");
    until_gauge(&app, 0.0);
    until_module(&app, "two", true);
    map.update("modules:\n  three:\n    prober: tcp\n");
    until_gauge(&app, 1.0);
    until_module(&app, "three", true);
}

#[test]
fn a_deleted_file_keeps_the_modules_until_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blackbox.yml");
    write(&file, "modules:\n  one:\n    prober: tcp\n");
    let app = watching(&file);
    std::fs::remove_file(&file).unwrap();
    until_gauge(&app, 0.0);
    app.log_line("No such file or directory");
    until_module(&app, "one", true);
    write(&file, "modules:\n  two:\n    prober: tcp\n");
    until_gauge(&app, 1.0);
    until_module(&app, "two", true);
}

#[test]
fn a_huge_file_or_a_fifo_is_refused_and_reloads_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blackbox.yml");
    write(&file, "modules:\n  one:\n    prober: tcp\n");
    let app = watching(&file);

    // Larger than 16 MiB (sparse: nothing is written): refused unread.
    let huge = dir.path().join("huge");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(lookout::config::MAX_FILE_BYTES + 1)
        .unwrap();
    std::fs::rename(&huge, &file).unwrap();
    until_gauge(&app, 0.0);
    app.log_line("larger than 16 MiB");
    until_module(&app, "one", true);

    // A FIFO: nothing ever writes to it; a reader would block for good.
    std::fs::remove_file(&file).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(&file)
        .status()
        .unwrap();
    assert!(status.success());
    app.log_line("not a regular file");
    // POST /-/reload is not stuck behind a blocked automatic reload.
    let response = app.admin("POST", "/-/reload");
    assert_eq!(response.status, 500, "{response:?}");
    assert!(response.body.contains("not a regular file"), "{response:?}");

    std::fs::remove_file(&file).unwrap();
    write(&file, "modules:\n  two:\n    prober: tcp\n");
    until_gauge(&app, 1.0);
    until_module(&app, "two", true);
}

#[test]
fn the_interval_takes_seconds_or_a_duration_from_100ms_to_a_day() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blackbox.yml");
    write(&file, "modules:\n  one:\n    prober: tcp\n");
    for (interval, ok) in [
        ("30", true),
        ("1m", true),
        ("1.5s", true),
        ("100ms", true),
        ("86400", true),
        ("0", false),
        ("0s", false),
        ("99ms", false),
        ("86401", false),
        ("18446744073709551615", false),
        ("-1", false),
        ("x", false),
    ] {
        let output = lookout()
            .args([
                "--config.enable-auto-reload",
                &format!("--config.auto-reload-interval={interval}"),
                "check-config",
                file.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        if ok {
            assert_eq!(output.status.code(), Some(0), "{interval}: {stderr}");
        } else {
            assert_eq!(output.status.code(), Some(2), "{interval}: {stderr}");
            assert!(
                stderr.contains("--config.auto-reload-interval"),
                "{interval}: {stderr}"
            );
        }
    }
    // Without a file there is nothing to watch: said once, and served.
    let app = spawn_app(&["--config.enable-auto-reload"], &[]);
    app.admin_until("/readyz", |r| r.status == 200);
    app.log_line("automatic reload needs --config.file");
}

#[test]
fn a_modules_file_over_16_mib_is_refused_at_start_too() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blackbox.yml");
    std::fs::File::create(&file)
        .unwrap()
        .set_len(lookout::config::MAX_FILE_BYTES + 1)
        .unwrap();
    for args in [
        vec!["check-config", file.to_str().unwrap()],
        vec!["--config.file", file.to_str().unwrap()],
    ] {
        let output = lookout().args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("larger than 16 MiB"), "{args:?}: {stderr}");
    }
    // At start-up a pipe is read (up to the limit), as `--config.file <(...)` needs.
    let output = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(r#"printf 'modules:\n  one:\n    prober: tcp\n' | "$0" check-config /dev/stdin"#)
        .arg(lookout().get_program())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
}
