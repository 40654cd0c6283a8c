#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mse_fuzz::digest_cache(data));
