//! Shared test helpers: fixtures, pinned times, byte flips.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mse_attest::Step;

pub fn fixture(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub fn fixture_str(rel: &str) -> String {
    String::from_utf8(fixture(rel)).unwrap()
}

/// Midnight UTC of a date.
pub fn day(y: i32, m: u8, d: u8) -> SystemTime {
    let date = time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap();
    let secs = date.midnight().assume_utc().unix_timestamp();
    UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap())
}

pub fn at_unix(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap())
}

pub fn flip(b: &[u8], at: usize) -> Vec<u8> {
    let mut v = b.to_vec();
    v[at] ^= 0x01;
    v
}

/// Assert an error names `step`, and return its text.
pub fn expect_step<T: std::fmt::Debug>(r: mse_attest::Result<T>, step: Step) -> String {
    match r {
        Ok(v) => panic!("expected a failure at {step}, got success: {v:?}"),
        Err(e) => {
            assert_eq!(e.step(), Some(step), "wrong step for error: {e}");
            let s = e.to_string();
            assert!(
                s.starts_with(step.as_str()),
                "message should start with the step: {s}"
            );
            s
        }
    }
}

/// Position of the first occurrence of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("needle not found")
}
