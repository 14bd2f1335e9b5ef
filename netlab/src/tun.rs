//! TUN devices (Linux `/dev/net/tun`, `IFF_TUN | IFF_NO_PI`): one IP packet per read
//! or write. Opened with the TUNSETIFF ioctl directly: three libc calls, where a TUN
//! crate would bring async runtimes and platform layers this lab does not need.
//!
//! A device lives as long as its file descriptor; moving it to another network
//! namespace (`ip link set NAME netns NS`) keeps the descriptor valid, so the lab
//! process can forward between devices that sit in different namespaces.

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

use anyhow::Context;

/// `_IOW('T', 202, int)` from linux/if_tun.h.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;

/// `struct ifreq` as TUNSETIFF reads it: the name, then the flags (the union's other
/// members are larger, hence the padding to 40 bytes).
#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// An open TUN device: reads and writes whole IP packets.
#[derive(Debug)]
pub struct Tun {
    file: File,
    /// The kernel's name for it (from the `rtcl%d` template), in the namespace it was
    /// created in.
    name: String,
}

impl Tun {
    /// Creates a new TUN device named from the template `rtcl%d` (the kernel picks the
    /// number). The device is down and has no address.
    ///
    /// # Errors
    /// `/dev/net/tun` cannot be opened (no module, not root) or the ioctl fails.
    pub fn create() -> anyhow::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .context("cannot open /dev/net/tun")?;
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: IFF_TUN | IFF_NO_PI,
            _pad: [0; 22],
        };
        for (dst, src) in req.name.iter_mut().zip(b"rtcl%d\0") {
            *dst = *src as libc::c_char;
        }
        // SAFETY: TUNSETIFF reads and writes a `struct ifreq`, which `IfReq` lays out
        // (40 bytes); the fd is open for the call's length.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, &mut req) };
        if rc < 0 {
            return Err(io::Error::last_os_error()).context("TUNSETIFF on /dev/net/tun");
        }
        // SAFETY: the kernel wrote a NUL-terminated name of at most IFNAMSIZ bytes.
        let name = unsafe { CStr::from_ptr(req.name.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        Ok(Self { file, name })
    }

    /// The device's name where it was created.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The descriptor, for poll(2).
    pub(crate) fn fd(&self) -> libc::c_int {
        self.file.as_raw_fd()
    }

    /// Reads one packet into `buf`; its length.
    pub(crate) fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is valid for `buf.len()` bytes of writes.
        let n = unsafe { libc::read(self.fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// Writes one packet.
    pub(crate) fn send(&self, packet: &[u8]) -> io::Result<()> {
        // SAFETY: `packet` is valid for `packet.len()` bytes of reads.
        let n = unsafe { libc::write(self.fd(), packet.as_ptr().cast(), packet.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}
