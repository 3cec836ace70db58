//! Log set-up for the functions and the command-line tools, and the two guards every log line
//! gets: control characters escaped, and the per-record line capped.
//!
//! JSON lines (the template's `LogFormat: JSON`) are escaped by serde. Text lines (the tools'
//! stderr, a function deployed without the JSON format, where Lambda splits stdout on
//! newlines) go through [`escaping_fields`]: every field and message, whatever its source
//! (a request's reason, a Security Hub title, a key of an unknown alert), is written with its
//! control characters (newline, CR, ESC, other C0 and C1) escaped, so no value can end the line
//! or drive the terminal. The one place is the subscriber's field formatter, not each call site.
//!
//! Length: CloudWatch Logs takes an event of at most 256 KB and cuts a longer one, which for a
//! JSON line means unparseable JSON. The record line ([`crate::report::log_record`]) caps each
//! of its open-ended fields with [`capped`] and [`capped_list`], which say what was left out.

use std::fmt::{self, Write as _};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::{self, Writer};

/// `text` with every control character escaped as Rust writes it (`\n`, `\r`, `\u{1b}`...).
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// The text formatter's fields: `name=value`, the message bare, separated by spaces, each
/// escaped with [`escape_controls`].
pub fn escaping_fields() -> impl for<'w> format::FormatFields<'w> + Send + Sync + 'static {
    format::debug_fn(
        |writer: &mut Writer<'_>, field: &tracing::field::Field, value: &dyn fmt::Debug| {
            let text = format!("{value:?}");
            let text = escape_controls(&text);
            if field.name() == "message" {
                writer.write_str(&text)
            } else {
                write!(writer, "{}={text}", field.name())
            }
        },
    )
    .delimited(" ")
}

/// Logging for command-line use: human-readable lines on stderr (stdout stays free for
/// output), at `default_level` unless `RUST_LOG` says otherwise. Colours only on a terminal,
/// so that a captured log holds no escape sequence at all.
pub fn init_cli_logging(default_level: &str) {
    use std::io::IsTerminal as _;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .fmt_fields(escaping_fields())
        .try_init();
}

/// Logging for a Lambda function, as lambda_runtime's default subscriber does it (stdout, no
/// time, level from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`, default INFO; JSON when
/// `AWS_LAMBDA_LOG_FORMAT` is JSON), with text lines escaped and without colours (CloudWatch
/// would keep the escape sequences).
pub fn init_function_logging() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|l| l.parse::<tracing_subscriber::filter::LevelFilter>().ok())
        .unwrap_or(tracing_subscriber::filter::LevelFilter::INFO);
    let filter = EnvFilter::builder()
        .with_default_directive(level.into())
        .from_env_lossy();
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let collector = tracing_subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let _ = if json {
        collector.json().try_init()
    } else {
        collector.fmt_fields(escaping_fields()).try_init()
    };
}

/// `text`, or its first `max` bytes (on a character boundary) and how much was left out.
pub fn capped(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}… ({} more bytes left out)",
        &text[..end],
        text.len() - end
    )
    .into()
}

/// `items` joined with `separator`, as many as fit in `max` bytes, then how many were left
/// out. A first item longer than `max` is itself [`capped`].
pub fn capped_list<'a>(
    items: impl IntoIterator<Item = &'a str>,
    separator: &str,
    max: usize,
) -> String {
    let mut out = String::new();
    let mut left_out = 0usize;
    for (n, item) in items.into_iter().enumerate() {
        if left_out > 0 {
            left_out += 1;
            continue;
        }
        let extra = if n == 0 { 0 } else { separator.len() };
        if out.len() + extra + item.len() <= max {
            if n > 0 {
                out.push_str(separator);
            }
            out.push_str(item);
        } else if n == 0 {
            out.push_str(&capped(item, max));
        } else {
            left_out = 1;
        }
    }
    if left_out > 0 {
        let _ = write!(out, "{separator}… {left_out} more left out");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(
            escape_controls("a\nb\r\u{1b}[2J\u{7f}\u{85}\té"),
            "a\\nb\\r\\u{1b}[2J\\u{7f}\\u{85}\\té"
        );
        assert!(matches!(
            escape_controls("plain, ünïcode"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn a_long_text_is_cut_on_a_character_boundary_saying_how_much() {
        assert_eq!(capped("short", 10), "short");
        assert_eq!(capped("ééé", 3), "é… (4 more bytes left out)");
        let long = "x".repeat(10_000);
        let cut = capped(&long, 100);
        assert!(cut.starts_with(&"x".repeat(100)) && cut.ends_with("(9900 more bytes left out)"));
    }

    #[test]
    fn a_long_list_keeps_what_fits_and_counts_the_rest() {
        let items: Vec<String> = (0..1000).map(|n| format!("finding-{n:04}")).collect();
        let joined = capped_list(items.iter().map(String::as_str), ",", 40);
        assert_eq!(
            joined,
            "finding-0000,finding-0001,finding-0002,… 997 more left out"
        );
        assert_eq!(capped_list(["a", "b"], ",", 40), "a,b");
        assert_eq!(capped_list([], ",", 40), "");
        assert!(
            capped_list(["y".repeat(50).as_str()], ",", 10).ends_with("(40 more bytes left out)")
        );
    }
}
