//! isoprobe's CI tooling: kernel-test VMs. A Debian kernel boots under qemu (TCG) with an
//! initramfs holding a tiny static init and the static suites; the init sets the machine up as a
//! cgroup2-only host, runs a plan of steps, and sends their output and files to the host over a
//! serial data channel; the host decodes them into a result per kernel.
//!
//! - [`frame`]: the records on the data channel (both sides).
//! - [`plan`]: what the init runs (both sides).
//! - [`guest`]: the init's work inside the VM.
//! - [`vm`], [`newc`], [`libtest`]: the host side: initramfs, qemu, results.
//! - [`carry`]: the host programs a plan carries into the VM, with their shared libraries.
//!
//! This crate holds no `unsafe`: it reaches the kernel through nix and std, and through the probe
//! crate's wrapper of swapon(2), which neither wraps.

#![deny(unsafe_code)]

pub mod carry;
pub mod frame;
pub mod guest;
pub mod libtest;
pub mod newc;
pub mod plan;
pub mod vm;
