//! The modules file as blackbox_exporter's yaml.v3 reads it: keys defined
//! twice are errors, merge keys merge.

use crate::support::{lookout, write};

#[test]
fn check_config_refuses_a_module_defined_twice_naming_key_and_lines() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blackbox.yml");
    write(
        &file,
        "modules:\n  http_2xx:\n    prober: http\n  http_2xx:\n    prober: tcp\n",
    );
    let output = lookout()
        .args(["check-config", file.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    for needle in [
        file.to_str().unwrap(),
        "modules: duplicate key `http_2xx`",
        "first at line 2",
        "at line 4",
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    }
}

#[test]
fn check_config_accepts_merge_keys() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blackbox.yml");
    write(
        &file,
        "modules:\n  http_base: &base\n    prober: http\n    http: {body_size_limit: 1.5MB}\n  http_post:\n    <<: *base\n    timeout: 5s\n",
    );
    let output = lookout()
        .args(["check-config", file.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("OK, 2 modules: http_base, http_post"),
        "{stderr}"
    );
}
