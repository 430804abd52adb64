//! The `xla-host` CLI, built in the tests package for its end-to-end tests.

fn main() -> std::process::ExitCode {
    xla_host::cli::main()
}
