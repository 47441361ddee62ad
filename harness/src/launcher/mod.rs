//! Launchers: what turns a case spec into a running probe inside a container.
//!
//! Only the native launcher exists so far (clone3, clone, unshare and setns paths); external
//! tools (LXC, bubblewrap, runc, ...) are the subject of their own issue and will sit beside it.

pub mod clone;
pub mod native;
pub mod process;
