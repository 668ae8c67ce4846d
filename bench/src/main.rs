//! `rt-bench`: the load generator's command line (BENCHMARKS.md).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = rt_bench::Args::parse();
    match rt_bench::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rt-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
