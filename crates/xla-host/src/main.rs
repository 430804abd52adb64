//! The `xla-host` binary: see `xla-host --help`.

fn main() -> std::process::ExitCode {
    xla_host::cli::main()
}
