//! The binary: everything lives in the library (`lib.rs`) so fuzz targets can reach it.

fn main() -> std::process::ExitCode {
    entra_token::run()
}
