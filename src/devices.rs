//! Camera, microphone and speaker enumeration and selection.

/// Prints the device listing (`rtc-cli devices`).
///
/// # Errors
/// Writing to `out` failed.
pub fn run_devices_command(json: bool, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    let _ = json;
    writeln!(out, "device listing is not built yet")?;
    Ok(())
}
