//! The vocabulary of namespace kinds shared by the probe, the harness and the reports.
//!
//! A [`NsSet`] is a set over the 8 kinds; it serialises as a sorted list of kind names so that
//! reports stay readable (`["mnt","pid"]`), and it parses back from the same names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One of the 8 Linux namespace types (see namespaces(7)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[serde(rename_all = "kebab-case")]
pub enum NsKind {
    Pid,
    Uts,
    Mnt,
    Ipc,
    Net,
    User,
    Cgroup,
    Time,
}

impl NsKind {
    /// All kinds, in the order used for bit positions and for display.
    pub const ALL: [NsKind; 8] =
        [NsKind::Pid, NsKind::Uts, NsKind::Mnt, NsKind::Ipc, NsKind::Net, NsKind::User, NsKind::Cgroup, NsKind::Time];

    /// The name used in `/proc/<pid>/ns/<name>` and in reports.
    pub const fn name(self) -> &'static str {
        match self {
            NsKind::Pid => "pid",
            NsKind::Uts => "uts",
            NsKind::Mnt => "mnt",
            NsKind::Ipc => "ipc",
            NsKind::Net => "net",
            NsKind::User => "user",
            NsKind::Cgroup => "cgroup",
            NsKind::Time => "time",
        }
    }

    /// The `CLONE_NEW*` flag for clone(2), clone3(2), unshare(2) and setns(2).
    pub const fn clone_flag(self) -> u64 {
        (match self {
            NsKind::Pid => libc::CLONE_NEWPID,
            NsKind::Uts => libc::CLONE_NEWUTS,
            NsKind::Mnt => libc::CLONE_NEWNS,
            NsKind::Ipc => libc::CLONE_NEWIPC,
            NsKind::Net => libc::CLONE_NEWNET,
            NsKind::User => libc::CLONE_NEWUSER,
            NsKind::Cgroup => libc::CLONE_NEWCGROUP,
            NsKind::Time => CLONE_NEWTIME,
        }) as u32 as u64
    }

    const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// `CLONE_NEWTIME` (Linux 5.6); it shares its value with `CSIGNAL`'s range, so the libc crate does
/// not export it for every target.
pub const CLONE_NEWTIME: i32 = 0x0000_0080;

impl fmt::Display for NsKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error for a namespace name that is not one of the 8 kinds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown namespace kind `{0}` (expected one of pid, uts, mnt, ipc, net, user, cgroup, time)")]
pub struct UnknownNsKind(pub String);

impl FromStr for NsKind {
    type Err = UnknownNsKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NsKind::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| UnknownNsKind(s.to_owned()))
    }
}

/// A set of namespace kinds. `NsSet::from_bits(n)` for `n` in `0..256` enumerates every combination.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct NsSet(u8);

impl NsSet {
    pub const EMPTY: NsSet = NsSet(0);
    pub const ALL: NsSet = NsSet(0xff);

    pub const fn from_bits(bits: u8) -> NsSet {
        NsSet(bits)
    }
    pub const fn bits(self) -> u8 {
        self.0
    }
    pub const fn contains(self, kind: NsKind) -> bool {
        self.0 & kind.bit() != 0
    }
    pub const fn with(self, kind: NsKind) -> NsSet {
        NsSet(self.0 | kind.bit())
    }
    pub const fn without(self, kind: NsKind) -> NsSet {
        NsSet(self.0 & !kind.bit())
    }
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }
    pub fn iter(self) -> impl Iterator<Item = NsKind> {
        NsKind::ALL.into_iter().filter(move |k| self.contains(*k))
    }
    /// Every one of the 256 combinations, from the empty set to all 8.
    pub fn every() -> impl Iterator<Item = NsSet> {
        (0..=u8::MAX).map(NsSet)
    }
    /// The `CLONE_NEW*` flags of the set, OR-ed together.
    pub fn clone_flags(self) -> u64 {
        self.iter().map(NsKind::clone_flag).fold(0, |a, b| a | b)
    }
}

impl FromIterator<NsKind> for NsSet {
    fn from_iter<I: IntoIterator<Item = NsKind>>(iter: I) -> Self {
        iter.into_iter().fold(NsSet::EMPTY, NsSet::with)
    }
}

impl fmt::Display for NsSet {
    /// `none`, or the kinds joined by `+` (`pid+mnt+user`): this is the spelling used in case names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        if *self == NsSet::ALL {
            return f.write_str("all");
        }
        let names: Vec<&str> = self.iter().map(NsKind::name).collect();
        f.write_str(&names.join("+"))
    }
}

impl fmt::Debug for NsSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NsSet({self})")
    }
}

impl FromStr for NsSet {
    type Err = UnknownNsKind;
    /// Parses what `Display` prints: `none`, `all`, or kinds joined by `+` or `,`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "" | "none" => Ok(NsSet::EMPTY),
            "all" => Ok(NsSet::ALL),
            s => s.split(['+', ',']).map(|p| p.trim().parse::<NsKind>()).collect(),
        }
    }
}

impl Serialize for NsSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for NsSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let kinds = Vec::<NsKind>::deserialize(d)?;
        Ok(kinds.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_enumerates_256_distinct_sets() {
        let all: std::collections::BTreeSet<_> = NsSet::every().collect();
        assert_eq!(all.len(), 256);
        assert!(all.contains(&NsSet::EMPTY) && all.contains(&NsSet::ALL));
    }

    #[test]
    fn clone_flags_of_all_kinds_are_distinct_bits() {
        let mut seen = 0u64;
        for k in NsKind::ALL {
            assert_eq!(k.clone_flag().count_ones(), 1, "{k}");
            assert_eq!(seen & k.clone_flag(), 0, "{k} overlaps");
            seen |= k.clone_flag();
        }
    }

    #[test]
    fn unknown_kind_is_a_clear_error() {
        let err = "pid+bogus".parse::<NsSet>().unwrap_err();
        assert!(err.to_string().contains("`bogus`"), "{err}");
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(bits in any::<u8>()) {
            let set = NsSet::from_bits(bits);
            prop_assert_eq!(set.to_string().parse::<NsSet>().unwrap(), set);
        }

        #[test]
        fn serde_round_trip(bits in any::<u8>()) {
            let set = NsSet::from_bits(bits);
            let json = serde_json::to_string(&set).unwrap();
            prop_assert_eq!(serde_json::from_str::<NsSet>(&json).unwrap(), set);
        }
    }
}
