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

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=code-order.txt");
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
    let list = format!("{}/code-order.txt", var("CARGO_MANIFEST_DIR"));
    println!("cargo:rustc-link-arg-bin=tollgate=-Wl,--symbol-ordering-file={list}");
    println!("cargo:rustc-link-arg-bin=tollgate=-Wl,--no-warn-symbol-ordering");
}
