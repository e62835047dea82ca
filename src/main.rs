use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    kitteh::tune_allocator();
    let cli = kitteh::cli::Cli::parse();
    kitteh::commands::run(cli)
}
