//! `kitteh config`: the effective configuration, or only its validation.

use super::Failure;
use crate::cli::ConfigArgs;
use crate::config::{self, Loaded};

pub(super) fn show_config(loaded: &Loaded, args: &ConfigArgs) -> Result<(), Failure> {
    if args.check {
        match &loaded.file {
            Some(file) => eprintln!("configuration is valid ({})", file.display()),
            None => eprintln!("configuration is valid (built-in defaults, no file)"),
        }
    } else {
        out!("{}", config::render_annotated(loaded));
    }
    Ok(())
}
