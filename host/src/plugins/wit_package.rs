//! The WIT package `grito:plugin` this host implements: its text (embedded so
//! `grito plugins new` can copy it into a new crate) and its version rules.
//!
//! A component names each interface it imports with the package version it
//! was built against, for example `grito:plugin/types@0.1.0`. The host loads
//! a plugin whose major and minor versions equal its own (any `0.1.x` for a
//! `0.1.0` host) and rejects any other.

/// The text of `wit/grito.wit`.
pub const WIT: &str = include_str!("../../../wit/grito.wit");

/// The package version declared in `WIT`; a unit test keeps the two equal.
pub const VERSION: &str = "0.1.0";

/// The prefix of every interface name of the package, as a component imports it.
pub const INTERFACE_PREFIX: &str = "grito:plugin/";

/// `major.minor` of `VERSION`: plugins built against any `series().x` load.
pub fn series() -> &'static str {
    let (major_minor, _patch) = VERSION.rsplit_once('.').expect("VERSION is major.minor.patch");
    major_minor
}

/// True when a plugin built against package version `version` can load here:
/// same major and minor, any patch (a pre-release or build suffix on the patch is allowed).
pub fn compatible(version: &str) -> bool {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    match core.rsplit_once('.') {
        Some((major_minor, patch)) => major_minor == series() && !patch.is_empty() && patch.bytes().all(|byte| byte.is_ascii_digit()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_matches_the_embedded_wit() {
        assert!(WIT.contains(&format!("package grito:plugin@{VERSION};")), "wit/grito.wit declares another version than {VERSION}");
    }

    #[test]
    fn same_minor_is_compatible() {
        assert!(compatible("0.1.0"));
        assert!(compatible("0.1.7"));
        assert!(compatible("0.1.1-rc.1"));
    }

    #[test]
    fn other_minor_or_major_is_not() {
        assert!(!compatible("0.2.0"));
        assert!(!compatible("0.0.9"));
        assert!(!compatible("1.1.0"));
        assert!(!compatible("0.10.0"));
        assert!(!compatible("garbage"));
    }
}
