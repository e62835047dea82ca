//! Printing listings a page at a time: a table, or a JSON array written as
//! its rows come (never held whole), and the cursor of the next page.

use serde_json::Value;

use super::Failure;
use crate::cli::Paging;

/// Rows a page holds when `--limit` is not given.
pub const DEFAULT_LIMIT: u64 = 100;
/// The most a page may hold.
pub const MAX_LIMIT: u64 = 1000;

/// Where a listing is printed.
pub struct Out {
    json: bool,
    rows: u64,
    header: Option<String>,
}

impl Out {
    /// A table under `header`, or a JSON array.
    pub fn new(json: bool, header: String) -> Self {
        if json {
            outln!("[");
        }
        Self {
            json,
            rows: 0,
            header: (!json).then_some(header),
        }
    }

    /// One row: `line` in the table, `value` in JSON.
    pub fn row(&mut self, line: impl FnOnce() -> String, value: impl FnOnce() -> Value) {
        if self.json {
            let text = value().to_string();
            if self.rows > 0 {
                outln!(",{text}");
            } else {
                outln!("{text}");
            }
        } else {
            if let Some(header) = self.header.take() {
                outln!("{header}");
            }
            outln!("{}", line());
        }
        self.rows += 1;
    }

    /// Ends the listing; `next` is where the next page starts, if anywhere.
    pub fn end(self, next: Option<String>) {
        if self.json {
            outln!("]");
        } else if let Some(header) = self.header {
            // No rows: the header alone says what is empty.
            outln!("{header}");
        }
        if let Some(next) = next {
            eprintln!("more: run again with --cursor {next} (or --all-pages for every page)");
        }
    }
}

impl Paging {
    /// Rows per page, within bounds.
    pub fn page_size(&self) -> Result<u64, Failure> {
        match self.limit {
            None => Ok(if self.all_pages {
                MAX_LIMIT
            } else {
                DEFAULT_LIMIT
            }),
            Some(0) => Err(Failure::config("--limit: must be at least 1")),
            Some(n) if n > MAX_LIMIT => Err(Failure::config(format!(
                "--limit: at most {MAX_LIMIT} rows a page (use --all-pages for everything)"
            ))),
            Some(n) => Ok(n),
        }
    }

    /// The cursor as a number (images, reports).
    pub fn numeric_cursor(&self) -> Result<Option<i64>, Failure> {
        self.cursor
            .as_deref()
            .map(|c| {
                c.parse().map_err(|_| {
                    Failure::config(format!(
                        "--cursor: {c:?} is not a cursor this listing printed"
                    ))
                })
            })
            .transpose()
    }
}
