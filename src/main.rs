//! The `turnpike` binary: everything is in the library; see `cli`. Owns
//! one choice of its own: the global allocator.

/// mimalloc instead of the C library's malloc: the gateway allocates and
/// frees many small objects per request (header maps, strings, futures),
/// where glibc's malloc cost about a tenth of the CPU per request and
/// musl's (the static build's) is slower still. Figures in BENCHMARKS.md.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    turnpike::cli::main()
}
