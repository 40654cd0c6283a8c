//! Giving the C heap's free pages back to the kernel.
//!
//! Starting a node allocates and frees a lot: the runtime measurement reads the digest cache and
//! walks ~11,000 files, and importing the app creates and drops many Python objects larger than
//! pymalloc's 512 bytes, which go to `malloc`. glibc keeps what was freed inside its arenas (one
//! per thread that allocated, and the threads of the start are gone), and only trims the top of an
//! arena, above a threshold that grows with the largest block freed. After a FastAPI start, that
//! was 3–5 MiB resident and unused for the node's whole life (measured in `docs/benchmarks.md`).
//!
//! [`release_free_pages`] asks glibc to hand every free whole page of every arena back to the
//! kernel (`madvise(MADV_DONTNEED)` on free chunks, `malloc_trim(0)`). The node calls it once,
//! when it starts serving. Other C libraries (musl) have no such call, and this is a no-op there.

/// Returns the free pages of every `malloc` arena to the kernel. Returns whether any memory was
/// released. Costs about a millisecond per few MiB: call it after a phase that freed much, not
/// on a hot path.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn release_free_pages() -> bool {
    // SAFETY: `malloc_trim` takes no pointer and only walks glibc's own arenas, each under its
    // lock, so it is sound to call from any thread at any time; 0 asks it to keep no padding at
    // the top of the main heap.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Returns the free pages of every `malloc` arena to the kernel: a no-op on this C library.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_pages() -> bool {
    false
}
