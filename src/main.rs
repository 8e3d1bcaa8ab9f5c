//! The `authbridge` binary: parses the command line and hands over to [`authbridge::cli`].

fn main() -> std::process::ExitCode {
    authbridge::cli::main()
}
