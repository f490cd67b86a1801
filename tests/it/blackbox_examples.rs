//! blackbox_exporter v0.28.0's own example modules files (kept read-only in
//! `../shared/blackbox-0.28`) pass `lookout check-config` unchanged, but for
//! the modules in [`REFUSED`], which use what the size budget keeps out of
//! the binary and are refused by name (README, "Differences").
//!
//! lookout reads the files a module names (CA bundles, body and header
//! files) when it loads, where blackbox_exporter waits for the first probe,
//! so the files the examples name at absolute paths (`/certs/my_cert.crt`,
//! `/files/body.txt`, ...) must exist. They are made in a root of the test's
//! own: a tmpfs in a mount namespace with the host's /usr bound in for the
//! dynamic loader, so nothing is written outside the test's directories.

use std::{path::PathBuf, process::Command};

use crate::support;

/// The files the examples name, and what each holds.
fn referenced_files() -> Vec<(&'static str, String)> {
    let ca = support::ca_pem();
    vec![
        ("certs/my_cert.crt", ca.clone()),
        ("etc/blackbox_exporter/CA_cert.crt", ca),
        ("files/body.txt", "{\"hello\": \"world\"}\n".to_owned()),
        ("path/to/api-key.txt", "an-api-key\n".to_owned()),
    ]
}

/// (file, module, key): modules refused at load, by name, and why.
/// CEL: the Rust CEL crate adds 1.1 MB to the static binary (README).
const REFUSED: &[(&str, &str, &str)] = &[(
    "example.yml",
    "http_json_cel_match",
    "fail_if_body_json_not_matches_cel",
)];

/// `text` without the module `name` (its key line and the lines indented
/// under it), the rest byte for byte.
fn without_module(text: &str, name: &str) -> String {
    let key = format!("  {name}:");
    let mut out = String::new();
    let mut skipping = false;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == key {
            skipping = true;
            continue;
        }
        if skipping && (line.starts_with("   ") || line.trim().is_empty()) {
            continue;
        }
        skipping = false;
        out.push_str(line);
    }
    out
}

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/blackbox-0.28")
}

/// Runs `lookout check-config /config/NAME` chrooted into a fresh root
/// holding `text` as NAME and the files the examples reference.
fn check_config_in_own_root(name: &str, text: &str) -> std::process::Output {
    let stage = tempfile::tempdir().unwrap();
    for (path, contents) in referenced_files() {
        let path = stage.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
    std::fs::create_dir(stage.path().join("config")).unwrap();
    std::fs::write(stage.path().join("config").join(name), text).unwrap();
    let root = tempfile::tempdir().unwrap();
    // The root is a tmpfs, so the mount points made in it vanish with the
    // namespace; /usr is bound in read-only, and the usr-merged top-level
    // links (/lib, /lib64, /bin) are copied as links, as Debian 12 has them.
    let script = r#"set -eu
stage=$1 root=$2 bin=$3 file=$4
mount -t tmpfs tmpfs "$root"
cp -a "$stage"/. "$root"/
mkdir "$root/usr" "$root/proc"
mount --rbind -o ro /usr "$root/usr"
for d in lib lib32 lib64 libx32 bin sbin; do
  if [ -L "/$d" ]; then cp -P "/$d" "$root/$d"
  elif [ -d "/$d" ]; then mkdir "$root/$d" && mount --rbind -o ro "/$d" "$root/$d"; fi
done
touch "$root/lookout"
mount --bind "$bin" "$root/lookout"
exec chroot "$root" /lookout check-config "/config/$file"
"#;
    Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            script,
            "sh",
        ])
        .arg(stage.path())
        .arg(root.path())
        .arg(env!("CARGO_BIN_EXE_lookout"))
        .arg(name)
        .env_remove("LOOKOUT_CONFIG")
        .output()
        .expect("unshare runs (the test command runs as root)")
}

fn example(name: &str) -> String {
    std::fs::read_to_string(examples_dir().join(name))
        .expect("../shared/blackbox-0.28 holds blackbox_exporter's examples")
}

#[test]
fn blackbox_exporters_example_files_pass_check_config_unchanged() {
    for name in ["example.yml", "blackbox.yml"] {
        let text = example(name);
        let refused: Vec<_> = REFUSED.iter().filter(|(file, ..)| *file == name).collect();
        let output = check_config_in_own_root(name, &text);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if let Some((_, module, key)) = refused.first() {
            // Unchanged, it is refused at load naming the module and key...
            assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
            assert!(
                stderr.contains(&format!("modules.{module}.")) && stderr.contains(key),
                "{name}: {stderr}"
            );
        }
        // ...and without those modules, every other one loads.
        let mut kept = text.clone();
        for (_, module, _) in &refused {
            kept = without_module(&kept, module);
        }
        let output = check_config_in_own_root(name, &kept);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{name}: {}\nstdout: {stdout}\nstderr: {stderr}",
            output.status
        );
        let modules: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        for module in modules["modules"].as_mapping().unwrap().keys() {
            let module = module.as_str().unwrap();
            if refused.iter().any(|(_, refused, _)| *refused == module) {
                assert!(!stderr.contains(module), "{name}: {module} in {stderr}");
            } else {
                // "FILE: OK, N modules: a, b, ..." on stderr.
                assert!(
                    stderr.contains(module),
                    "{name}: {module} missing from {stderr}"
                );
            }
        }
    }
}

#[test]
fn an_example_whose_referenced_file_is_missing_is_refused_naming_it() {
    // The same example in the host's root, where /certs/my_cert.crt does not
    // exist: lookout refuses it at load (exit 2) and says which file.
    let referenced = [
        "/certs/my_cert.crt",
        "/etc/blackbox_exporter/CA_cert.crt",
        "/files/body.txt",
        "/path/to/api-key.txt",
    ];
    assert!(
        referenced
            .iter()
            .all(|path| !std::path::Path::new(path).exists()),
        "this machine holds one of {referenced:?}"
    );
    let mut text = example("example.yml");
    for (_, module, _) in REFUSED {
        text = without_module(&text, module);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("example.yml");
    std::fs::write(&file, text).unwrap();
    let output = support::lookout()
        .arg("check-config")
        .arg(&file)
        .env_remove("LOOKOUT_CONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        referenced.iter().any(|path| stderr.contains(path)),
        "{stderr}"
    );
}
