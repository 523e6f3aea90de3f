//! The process allocator and its one tuning knob.
//!
//! mimalloc serves every command (see README, "Release build"): the gateway's hot path allocates
//! and frees many small buffers per request, where glibc's malloc spent a tenth of the CPU of a
//! proxied request. It is built with `no_thp`, which turns transparent huge pages off for the
//! process: their 2 MiB pages backed each touched arena chunk (1,000 open streams peaked at
//! 103 MiB with them).
//!
//! mimalloc's v3 line keeps freed memory for `purge_delay` = 1,000 ms before it returns it to the
//! OS. That suits a long-lived server, which reuses it at once, and not a batch run: every page
//! of 100 Search records the SDK deserializes grows a vector of ~10 KB records by doubling (about
//! 2.4 MB of blocks, freed again once the page is reduced to its facts), and a 10,000-model
//! ingest that lasts one second kept those blocks until it ended: 75-99 MiB peak RSS over a live
//! heap of 31 MB. [`tune_for_batch`] makes mimalloc purge at once for the commands that are not
//! servers (README, "Ingestion benchmark", has the measurements).

use libmimalloc_sys::{mi_option_set, mi_option_t};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay`: its place in `enum mi_option_e` of mimalloc v3's `mimalloc.h`
/// (libmimalloc-sys names no constant for it). `purge_delay_is_the_option_we_set` checks it.
const PURGE_DELAY: mi_option_t = 15;

/// The environment variable through which mimalloc reads the same option; a value the user set
/// there wins over ours.
const PURGE_DELAY_ENV: &str = "MIMALLOC_PURGE_DELAY";

/// Return freed memory to the OS at once (`purge_delay` 0), unless the user chose a delay in
/// the environment. Call before the async runtime starts its threads.
pub(crate) fn tune_for_batch() {
    if std::env::var_os(PURGE_DELAY_ENV).is_some() {
        return;
    }
    set_purge_delay(0);
}

/// The purge delay in force, in milliseconds.
#[cfg(test)]
fn purge_delay() -> std::ffi::c_long {
    // SAFETY: `mi_option_get` reads one entry of mimalloc's static option table; any option
    // number below `_mi_option_last` is valid, and 15 is `mi_option_purge_delay` in the v3 enum
    // this crate builds (see `PURGE_DELAY`).
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_get(PURGE_DELAY)
    }
}

fn set_purge_delay(ms: i32) {
    // SAFETY: as in `purge_delay`; `mi_option_set` stores a plain integer that mimalloc reads
    // whenever it schedules a purge. It is called from `main` before any other thread exists.
    #[allow(unsafe_code)]
    unsafe {
        mi_option_set(PURGE_DELAY, ms.into())
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_delay_is_the_option_we_set() {
        // The v3 default of `purge_delay` is 1,000 ms (`options.c`); no other option of the
        // table has that default, so reading it proves the option number. The test process
        // runs without MIMALLOC_PURGE_DELAY (nothing in the test scripts sets it).
        if std::env::var_os(PURGE_DELAY_ENV).is_none() {
            assert_eq!(purge_delay(), 1000);
        }
        set_purge_delay(0);
        assert_eq!(purge_delay(), 0);
        set_purge_delay(1000);
        assert_eq!(purge_delay(), 1000);
    }
}
