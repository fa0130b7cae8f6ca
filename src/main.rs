//! `runner`: the command-line entry point; all the work is in the library.

fn main() -> std::process::ExitCode {
    scorelab::cli::main()
}
