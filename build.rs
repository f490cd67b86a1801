//! The static binaries' code layout (issue 18): what runs at start-up and
//! while idle is linked first, in one run of pages, by link/startup.ld (which
//! says why and how it is made).

use std::{env, path::Path};

fn main() {
    println!("cargo::rerun-if-changed=link/startup.ld");
    // The static musl builds only (the image's binaries): glibc builds are for
    // development and tests, whose many small sections would make the linker
    // match the script's patterns against far more sections for nothing.
    if env::var("CARGO_CFG_TARGET_ENV").as_deref() != Ok("musl") {
        return;
    }
    let manifest_dir = env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default();
    let script = Path::new(&manifest_dir).join("link/startup.ld");
    // `-T file` is read the same by the gcc driver (x86_64 here, both targets in
    // Nix) and by lld (aarch64 here); the script only adds to the default one.
    println!("cargo::rustc-link-arg-bins=-T");
    println!("cargo::rustc-link-arg-bins={}", script.display());
}
