//! Links the release `agent-rs` with the code a run executes laid out together.
//!
//! A run touches about 2 MB of the binary's 12 MB of code, spread over all of it; the
//! kernel maps 64 KB around each page a process faults in (fault-around), so that spread
//! made two thirds of the code resident, most of the agent's memory. `link/hot-symbols.txt`
//! lists the functions a scripted session executed (`scripts/order-symbols` regenerates
//! it); the linker (LLD, Rust's default on x86_64 Linux) puts them first, in that order.
//! Names it does not find (code changed since the list was made) are skipped quietly: a
//! stale list costs memory, never correctness.
//!
//! Only for `x86_64-unknown-linux-gnu` in optimised builds, and not with
//! `AGENT_RS_SYMBOL_ORDER=off` (another linker than LLD would reject the option).

use std::env;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=link/hot-symbols.txt");
    println!("cargo:rerun-if-env-changed=AGENT_RS_SYMBOL_ORDER");
    println!("cargo:rerun-if-env-changed=AGENT_RS_LINK_MAP");
    let target = env::var("TARGET").unwrap_or_default();
    let profile = env::var("PROFILE").unwrap_or_default();
    let wanted = env::var("AGENT_RS_SYMBOL_ORDER").as_deref() != Ok("off");
    if target != "x86_64-unknown-linux-gnu" || profile != "release" || !wanted {
        return;
    }
    // `scripts/order-symbols` asks for the link map: where each function of this very
    // build landed (the binary itself is stripped), to name what a profile ran.
    if let Ok(map) = env::var("AGENT_RS_LINK_MAP") {
        println!("cargo:rustc-link-arg-bin=agent-rs=-Wl,-Map={map}");
    }
    let Ok(dir) = env::var("CARGO_MANIFEST_DIR") else {
        return;
    };
    let list = Path::new(&dir).join("link").join("hot-symbols.txt");
    if !list.is_file() {
        return;
    }
    println!(
        "cargo:rustc-link-arg-bin=agent-rs=-Wl,--symbol-ordering-file={}",
        list.display()
    );
    println!("cargo:rustc-link-arg-bin=agent-rs=-Wl,--no-warn-symbol-ordering");
}
