//! The call returns memory that `free` kept: resident memory goes down.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// Resident memory of this process, in KiB (`VmRSS`: whatever the page size).
fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn free_pages_kept_by_malloc_go_back_to_the_kernel() {
    // 256 blocks of 48 KiB (under glibc's 128 KiB mmap threshold, so they come from an arena),
    // written so that they are resident. Every other one stays allocated: what is freed lies
    // between live blocks, where `free` cannot trim it.
    let blocks: Vec<Vec<u8>> = (0..256).map(|i| vec![i as u8 | 1; 48 * 1024]).collect();
    let kept: Vec<Vec<u8>> = blocks
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(_, b)| b)
        .collect();
    let before = resident_kib();

    assert!(
        mse_heap::release_free_pages(),
        "glibc reported nothing released"
    );
    let after = resident_kib();

    // 128 blocks of 48 KiB freed = 6 MiB, each holding 11 whole 4 KiB pages (x86-64, where the
    // TEEs are): at least 4 MiB back.
    assert!(
        before.saturating_sub(after) >= 4 * 1024,
        "resident memory went from {before} KiB to {after} KiB"
    );
    // What was kept is intact.
    assert!(
        kept.iter()
            .enumerate()
            .all(|(i, b)| b.iter().all(|&x| x == ((2 * i) as u8 | 1)))
    );
}
