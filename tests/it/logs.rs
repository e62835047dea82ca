//! What the library logs when a test runs it in-process: the statements
//! sqlx executes, and Kitteh's own messages, caught by one subscriber for
//! the whole test binary.

use std::sync::{Mutex, Once};

use tracing_subscriber::layer::{Context, SubscriberExt};

#[derive(Default)]
pub struct Caught {
    pub statements: Vec<String>,
    pub messages: Vec<String>,
}

pub static CAUGHT: Mutex<Caught> = Mutex::new(Caught {
    statements: Vec::new(),
    messages: Vec::new(),
});

struct Catch;

#[derive(Default)]
struct Fields {
    summary: String,
    statement: String,
    message: String,
}

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "summary" => self.summary = value.to_string(),
            "db.statement" => self.statement = value.to_string(),
            "message" => self.message = value.to_string(),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Catch {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let target = event.metadata().target();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut caught = CAUGHT.lock().unwrap();
        if target == "sqlx::query" {
            // The whole statement when the summary cut it short.
            let sql = if fields.statement.trim().is_empty() {
                fields.summary
            } else {
                fields.statement
            };
            caught.statements.push(sql.trim().to_string());
        } else if target.starts_with("kitteh") {
            caught.messages.push(fields.message);
        }
    }
}

/// Installs the subscriber (once per test binary).
pub fn capture() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let subscriber = tracing_subscriber::registry().with(Catch);
        tracing::subscriber::set_global_default(subscriber).expect("no other subscriber");
    });
}

/// The statements caught so far, forgotten.
pub fn take_statements() -> Vec<String> {
    std::mem::take(&mut CAUGHT.lock().unwrap().statements)
}

/// Whether Kitteh has logged a message containing `text`.
pub fn logged(text: &str) -> bool {
    CAUGHT
        .lock()
        .unwrap()
        .messages
        .iter()
        .any(|m| m.contains(text))
}
