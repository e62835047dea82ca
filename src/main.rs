use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = kitteh::cli::Cli::parse();
    kitteh::commands::run(cli)
}
