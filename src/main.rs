//! `runner`: the command-line entry point; all the work is in the library.

// candle allocates a fresh buffer for every tensor op; with glibc's allocator large buffers
// are mmap'ed and unmapped each time, and page faults then cost more than the arithmetic.
#[global_allocator]
static GLOBAL: scorelab::Allocator = scorelab::Allocator;

fn main() -> std::process::ExitCode {
    scorelab::cli::main()
}
