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
//! Only for `x86_64-unknown-linux-gnu` in optimised builds, when the toolchain links with
//! its own LLD (it ships one, and neither a linker nor linker flags were chosen): another
//! linker would reject the option. `AGENT_RS_SYMBOL_ORDER=off` turns it off.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=link/hot-symbols.txt");
    println!("cargo:rerun-if-env-changed=AGENT_RS_SYMBOL_ORDER");
    println!("cargo:rerun-if-env-changed=AGENT_RS_LINK_MAP");
    let target = env::var("TARGET").unwrap_or_default();
    let profile = env::var("PROFILE").unwrap_or_default();
    let wanted = env::var("AGENT_RS_SYMBOL_ORDER").as_deref() != Ok("off");
    if target != "x86_64-unknown-linux-gnu" || profile != "release" || !wanted || !links_with_lld()
    {
        return;
    }
    // `scripts/order-symbols` asks for the link map: where each function of this very
    // build landed (the binary itself is stripped), to name what a profile ran.
    if let Ok(map) = env::var("AGENT_RS_LINK_MAP") {
        println!("cargo:rustc-link-arg-bin=agent-rs=-Wl,-Map={map}");
        // The names as the ordering file needs them, not demangled.
        println!("cargo:rustc-link-arg-bin=agent-rs=-Wl,--no-demangle");
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
    if glibc_reads_packed_relocations() {
        println!("cargo:rustc-link-arg-bin=agent-rs=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether the C library this build links against (and the binary will run on: a
/// `x86_64-unknown-linux-gnu` build is for this machine) applies packed relative
/// relocations (`DT_RELR`, glibc 2.36 and later). A position-independent binary's half
/// megabyte of relocations (one 24-byte entry per pointer in its read-only data) then
/// shrinks to a few kilobytes; the loader reads all of them at every start, so they were
/// all resident.
fn glibc_reads_packed_relocations() -> bool {
    let Ok(output) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    // "glibc 2.36"
    let text = String::from_utf8_lossy(&output.stdout);
    let Some(version) = text.trim().strip_prefix("glibc ") else {
        return false;
    };
    let mut parts = version
        .split('.')
        .map(|part| part.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (2, 36)
}

/// Whether rustc links this target with the LLD it ships (Rust's default on
/// x86_64 Linux since 1.90): a toolchain with `gcc-ld/ld.lld`, and no linker chosen by
/// Cargo configuration or flags.
fn links_with_lld() -> bool {
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    if env::var_os("RUSTC_LINKER").is_some() {
        return false;
    }
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if flags.contains("linker") || flags.contains("link-self-contained") {
        return false;
    }
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let Ok(output) = Command::new(rustc).args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    sysroot
        .join("lib/rustlib/x86_64-unknown-linux-gnu/bin/gcc-ld/ld.lld")
        .is_file()
}
