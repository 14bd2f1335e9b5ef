//! The `rtc-cli` binary: parse the command line and dispatch.

fn main() {}
