//! Every CLI path that prints text a plugin controls (its description, its
//! error messages, its panic text, its cursor, its data) prints it escaped:
//! the terminal sees no control or bidirectional character but the line
//! ends the host writes itself. Data stays exact in JSON output.

use crate::cli::xla_host;
use crate::support::guests;
use serde_json::json;
use xla_host::untrusted::is_unsafe_char;

/// The escape sequences the hostile guests send (see their sources).
const ESCAPES: &str =
    "\u{1b}]0;owned\u{7}\u{1b}]52;c;ZWNobyBvd25lZA==\u{7}\u{1b}[2J\u{7}\rOK\nERROR forged line \u{202e}txt.exe\u{9b}1A";

/// Fails on any control or bidirectional character but `\n`.
fn assert_clean(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    if let Some(c) = text.chars().find(|c| *c != '\n' && is_unsafe_char(*c)) {
        panic!("{what} holds U+{:04X}:\n{text}", u32::from(c));
    }
}

fn run_hostile(attack: serde_json::Value) -> std::process::Output {
    let config = attack.to_string();
    xla_host(&["plugin", "run", guests::HOSTILE, "--config", &config], &[])
}

#[test]
fn plugin_check_refuses_a_description_with_escapes_and_prints_none_of_it() {
    let output = xla_host(&["plugin", "check", guests::DESCRIBE_ESCAPES], &[]);
    assert!(!output.status.success());
    assert_clean("stdout", &output.stdout);
    assert_clean("stderr", &output.stderr);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("describe() returned an unacceptable description"),
        "{stderr}"
    );
    assert!(output.stderr.len() < 4096, "{} bytes of error", output.stderr.len());
}

#[test]
fn plugin_check_refuses_hosts_that_differ_from_the_manifest_and_shows_both() {
    let output = xla_host(&["plugin", "check", guests::DESCRIBE_LIAR], &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("describe() claims the hosts [https://feed.example.com]") && stderr.contains("declares [*]"),
        "{stderr}"
    );
}

#[test]
fn plugin_run_escapes_error_messages_panic_text_and_cursors() {
    for place in ["error", "panic"] {
        let output = run_hostile(json!({"attack": "escapes", "in": place}));
        assert!(!output.status.success(), "{place}");
        assert_clean(place, &output.stderr);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("\\u{1b}]0;owned"), "{place}: {stderr}");
    }
    let output = run_hostile(json!({"attack": "escapes", "in": "cursor"}));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_clean("stdout", &output.stdout);
    assert_clean("stderr", &output.stderr);
    assert!(String::from_utf8_lossy(&output.stderr).contains("next cursor: \\u{1b}]0;owned"));
}

#[test]
fn plugin_run_prints_hostile_data_escaped_and_exact() {
    let output = run_hostile(json!({"attack": "escapes", "in": "data"}));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_clean("stdout", &output.stdout);
    let line: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON line");
    assert_eq!(line["id"], ESCAPES, "the data is unchanged");
    assert_eq!(line["dimensions"][0][1], ESCAPES);
}

#[test]
fn plugin_run_refuses_what_sync_refuses() {
    for (what, reason) in [
        ("nan", "the value is not a finite number"),
        ("infinity", "the value is not a finite number"),
        ("at-min", "the time is not between 1900 and 9999"),
    ] {
        let output = run_hostile(json!({"attack": "bad-output", "what": what}));
        assert!(!output.status.success(), "{what}");
        assert!(output.stdout.is_empty(), "{what}: nothing is printed as data");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("pull() returned observation `bad` (metric `bad`), which is refused")
                && stderr.contains(reason),
            "{what}: {stderr}"
        );
    }
}
