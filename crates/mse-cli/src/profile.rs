//! Resource profiles: what `resource = "…"` (seed layout) or `cloud.hardware` (mse-cli layout)
//! gives a local deployment. Documented in docs/resource-profiles.md; keep the two in step.

use std::time::Duration;

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;
const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;

/// Limits applied to the node process of one deployment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Profile {
    /// Name as written in the configuration.
    pub name: String,
    /// Data-segment limit (`RLIMIT_DATA`: heap, anonymous mappings, thread stacks), bytes.
    pub memory_bytes: u64,
    /// CPUs the node may run on (affinity); `None` = all.
    pub cpus: Option<usize>,
    /// Time after which the node is stopped and its certificate expires.
    #[serde(serialize_with = "secs")]
    pub lifetime: Duration,
    /// Storage quota for the app's folders (the seed promises up to 10 GB).
    pub storage_bytes: u64,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

/// The named profiles, in the order documentation lists them.
pub const NAMES: &[&str] = &["free", "small", "medium", "large"];

/// The profile of a `resource` name; `None` if unknown. Besides [`NAMES`], the hardware names of
/// the original cloud (`<N>g-<region>-<nnn>`, e.g. `4g-eu-001`) give N GiB for 30 days.
pub fn lookup(name: &str) -> Option<Profile> {
    let (memory_bytes, cpus, lifetime, storage_bytes) = match name {
        "free" => (512 * MIB, Some(1), 4 * HOUR, GIB),
        "small" => (GIB, Some(1), DAY, 2 * GIB),
        "medium" => (4 * GIB, Some(2), 7 * DAY, 10 * GIB),
        "large" => (8 * GIB, None, 30 * DAY, 10 * GIB),
        other => {
            let gib = hardware_gib(other)?;
            (gib * GIB, None, 30 * DAY, 10 * GIB)
        }
    };
    Some(Profile {
        name: name.to_owned(),
        memory_bytes,
        cpus,
        lifetime: Duration::from_secs(lifetime),
        storage_bytes,
    })
}

/// `4g-eu-001` → 4. Bounded so a typo cannot ask for absurd limits.
fn hardware_gib(name: &str) -> Option<u64> {
    let (size, rest) = name.split_once("g-")?;
    if size.is_empty()
        || size.len() > 3
        || !size.bytes().all(|b| b.is_ascii_digit())
        || rest.is_empty()
    {
        return None;
    }
    let gib: u64 = size.parse().ok()?;
    (1..=512).contains(&gib).then_some(gib)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_is_small_and_short_lived() {
        let p = lookup("free").unwrap();
        assert_eq!(p.memory_bytes, 512 * MIB);
        assert_eq!(p.lifetime, Duration::from_secs(4 * 3600));
    }

    #[test]
    fn every_documented_name_resolves_and_original_hardware_names_too() {
        for n in NAMES {
            assert!(lookup(n).is_some(), "{n}");
        }
        assert_eq!(lookup("4g-eu-001").unwrap().memory_bytes, 4 * GIB);
        assert!(lookup("0g-eu-001").is_none());
        assert!(lookup("99999g-eu").is_none());
        assert!(lookup("huge").is_none());
    }
}
