//! The harness's system-call layer: the one home of its `unsafe` code (the crate is otherwise
//! `deny(unsafe_code)`), each block with its SAFETY note, each wrapper linking its man page.
//! Everything above takes safe types: `OwnedFd`/`BorrowedFd`, never a bare descriptor number it
//! must trust.
//!
//! - [`clone`]: clone3(2)/clone(2) and the child's side of the spawn pipeline up to execve(2);
//! - [`mount_api`]: fsopen(2)/fsconfig(2)/fsmount(2), a v1 hierarchy mounted detached;
//! - [`perf`]: perf_event_open(2), a cgroup's cpu-clock counter;
//! - [`fds`]: the descriptor table (close_range(2)), and a child that holds it;
//! - [`statx`]: statx(2)'s mount id (is a path a mount point);
//! - [`primitives`]: the benchmarks' raw process and namespace primitives (children that time
//!   their own system calls between clone and `_exit`, shared pages, the bare-libc references).

#![allow(unsafe_code)]

pub mod clone;
pub mod fds;
pub mod mount_api;
pub mod perf;
pub mod primitives;
pub mod statx;
