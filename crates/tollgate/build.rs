//! Code layout of the `tollgate` binary. A process maps the pages of its binary that it runs, and
//! the kernel maps each page it faults in together with its neighbours (64 KiB at a time), so the
//! ~4,500 functions a gateway runs from start to idle, scattered through 27 MB of code, kept
//! ~17 MiB of it resident. `code-order.txt` lists them (made by `bench/idle_rss.py --code-order`,
//! see bench/README.md) and LLD, the linker Rust uses on x86_64 Linux, places them first and
//! together. A name the build no longer has is skipped, so a stale list costs only memory.
//!
//! Only where the linker is known to be LLD (the x86_64-unknown-linux-gnu default since Rust 1.90)
//! and in optimised builds; `TOLLGATE_CODE_ORDER=off` or a linker of one's own leaves the default
//! layout.
//!
//! A symbol's name carries a hash of its crate's build settings, so a list made from a `release`
//! build matches nothing in a `dist` build (what the packages ship): each profile has its own list,
//! `code-order.txt` for `release` and `code-order-dist.txt` for `dist`.

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=code-order.txt");
    println!("cargo:rerun-if-changed=code-order-dist.txt");
    println!("cargo:rerun-if-env-changed=TOLLGATE_CODE_ORDER");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER");
    let var = |name: &str| env::var(name).unwrap_or_default();
    let own_linker = var("CARGO_ENCODED_RUSTFLAGS").contains("link")
        || !var("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_empty();
    if var("TARGET") != "x86_64-unknown-linux-gnu"
        || var("PROFILE") == "debug"
        || own_linker
        || var("TOLLGATE_CODE_ORDER") == "off"
    {
        return;
    }
    // Cargo tells a build script only whether a profile is optimised; the profile's own name is
    // the directory its outputs go to: <target>/[<triple>/]<profile>/build/<crate>/out.
    let out_dir = var("OUT_DIR");
    let profile = std::path::Path::new(&out_dir)
        .ancestors()
        .nth(3)
        .and_then(|dir| dir.file_name())
        .and_then(|name| name.to_str())
        .unwrap_or("release");
    let file = if profile == "dist" {
        "code-order-dist.txt"
    } else {
        "code-order.txt"
    };
    let list = format!("{}/{file}", var("CARGO_MANIFEST_DIR"));
    if !std::path::Path::new(&list).exists() {
        return;
    }
    println!("cargo:rustc-link-arg-bin=tollgate=-Wl,--symbol-ordering-file={list}");
    println!("cargo:rustc-link-arg-bin=tollgate=-Wl,--no-warn-symbol-ordering");
}
