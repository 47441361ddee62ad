//! The data channel from inside the VM: a serial port (by default the second one, /dev/ttyS1, so
//! that kernel messages on the console never interleave with records), put in raw mode so that
//! the tty layer passes bytes unchanged, carrying [`crate::frame`] records.
//!
//! It must never be the only place a human looks: the console shows the same run as it happens.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};

use nix::sys::termios::{SetArg, cfmakeraw, tcdrain, tcgetattr, tcsetattr};

use super::GuestError;
use crate::frame::{Record, file_records, write_records};

/// The kernel command-line parameter naming the channel's device.
pub const PARAM: &str = "isoprobe.data";
/// The device when the parameter is absent.
pub const DEFAULT_DEVICE: &str = "/dev/ttyS1";

/// The device named by `isoprobe.data=` in a kernel command line.
pub fn device_from_cmdline(cmdline: &str) -> String {
    cmdline
        .split_whitespace()
        .find_map(|p| p.strip_prefix(PARAM)?.strip_prefix('='))
        .unwrap_or(DEFAULT_DEVICE)
        .to_owned()
}

#[derive(Debug)]
pub struct Channel {
    out: BufWriter<File>,
}

impl Channel {
    pub fn open(device: &str) -> Result<Channel, GuestError> {
        let file = OpenOptions::new()
            .write(true)
            .open(device)
            .map_err(|source| GuestError::Io { what: format!("open the data channel {device}"), source })?;
        // A tty translates \n to \r\n and more unless raw; a file or pipe needs nothing.
        if let Ok(mut t) = tcgetattr(&file) {
            cfmakeraw(&mut t);
            tcsetattr(&file, SetArg::TCSANOW, &t)
                .map_err(|source| GuestError::Sys { what: format!("make {device} raw"), source })?;
        }
        Ok(Channel { out: BufWriter::new(file) })
    }

    pub fn send(&mut self, record: &Record) -> Result<(), GuestError> {
        self.send_all(std::slice::from_ref(record))
    }

    fn send_all(&mut self, records: &[Record]) -> Result<(), GuestError> {
        write_records(&mut self.out, records)
            .map_err(|source| GuestError::Io { what: "write to the data channel".into(), source })
    }

    pub fn send_file(&mut self, name: &str, data: &[u8]) -> Result<(), GuestError> {
        let records = file_records(name, data).map_err(|e| GuestError::Setup(e.to_string()))?;
        self.send_all(&records)
    }

    /// Waits until everything written has left the port: the VM powers off right after.
    pub fn drain(&mut self) -> Result<(), GuestError> {
        self.out.flush().map_err(|source| GuestError::Io { what: "flush the data channel".into(), source })?;
        match tcdrain(self.out.get_ref()) {
            Ok(()) | Err(nix::errno::Errno::ENOTTY) => Ok(()),
            Err(source) => Err(GuestError::Sys { what: "drain the data channel".into(), source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_device_comes_from_the_command_line() {
        assert_eq!(device_from_cmdline("console=ttyS0 isoprobe.data=/dev/hvc0 quiet"), "/dev/hvc0");
        assert_eq!(device_from_cmdline("console=ttyS0 isoprobe.datafoo=x"), DEFAULT_DEVICE);
    }
}
