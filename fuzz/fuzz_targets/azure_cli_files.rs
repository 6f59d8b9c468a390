#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| entra_token::fuzz::azure_cli_files(data));
