//! Points the embedded web console at `web/dist` when the UI has been built, or at a generated
//! page that says how to build it, so that `cargo build` works without Node.

#![expect(
    clippy::expect_used,
    reason = "a build script that cannot write its output should stop loudly"
)]

use std::path::PathBuf;
use std::{env, fs};

const PLACEHOLDER: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>tollgate console: UI not built</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem}code{background:#8882;padding:.1rem .3rem;border-radius:4px}</style>
</head><body>
<h1>The web console was not built into this binary</h1>
<p>This tollgate was compiled without the web console's assets. The REST API (<a href="/api/docs">/api/docs</a>),
health (<a href="/health/detailed">/health/detailed</a>) and metrics work as usual.</p>
<p>To include the console, build the UI with Node.js 20 and compile again:</p>
<pre><code>npm --prefix web ci
npm --prefix web run build
cargo build --release -p tollgate</code></pre>
<p>or run <code>./scripts/run.sh</code>, which does all of it.</p>
</body></html>
"#;

fn main() {
    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let web = manifest.join("../../web");
    let dist = web.join("dist");
    let built = dist.join("index.html").is_file();
    let dir = if built {
        println!("cargo:rerun-if-changed={}", dist.display());
        dist
    } else {
        let out =
            PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("ui-missing");
        fs::create_dir_all(&out).expect("create the placeholder folder");
        fs::write(out.join("index.html"), PLACEHOLDER).expect("write the placeholder page");
        // Watch the web folder so that a later `npm run build` is picked up.
        if web.is_dir() {
            println!(
                "cargo:rerun-if-changed={}",
                web.join("package.json").display()
            );
            println!("cargo:rerun-if-changed={}", web.display());
        }
        out
    };
    let dir = dir.canonicalize().expect("the UI folder exists");
    println!("cargo:rustc-env=TOLLGATE_UI_DIR={}", dir.display());
    println!("cargo:rustc-env=TOLLGATE_UI_BUILT={}", u8::from(built));
    println!("cargo:rerun-if-changed=build.rs");
}
