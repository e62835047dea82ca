//! The README against the code: every configuration key and every field of
//! the API's answer is documented, so neither can drift away unnoticed.

use crate::fixtures;
use crate::helpers::{Sandbox, Server, bare_kitteh};

/// Those of `names` that no README table has a row for: the first cell of
/// a row names what it documents (`` `state` ``, `` `width`, `height` ``).
/// A word that only appears in prose does not count.
fn undocumented(names: &[String]) -> Vec<&String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let documented: Vec<String> = readme
        .lines()
        .filter_map(|line| line.strip_prefix("| "))
        .filter_map(|row| row.split(" | ").next())
        .flat_map(|cell| {
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    names.iter().filter(|n| !documented.contains(n)).collect()
}

#[test]
fn a_name_in_prose_alone_does_not_count_as_documented() {
    // `auto_migrate` is written in prose and in a row (as
    // `database.auto_migrate`); the bare word has no row of its own.
    let names = vec![
        "auto_migrate".to_string(),
        "database.auto_migrate".to_string(),
    ];
    assert_eq!(undocumented(&names), vec![&names[0]]);
}

#[test]
fn every_configuration_key_is_in_the_readme() {
    let sb = Sandbox::sqlite();
    let out = bare_kitteh(sb.path()).arg("config").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let mut section = String::new();
    let mut keys = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
        } else if let Some((key, _)) = line.split_once(" = ") {
            keys.push(format!("{section}.{key}"));
        }
    }
    assert!(keys.len() > 40, "{text}");
    let missing = undocumented(&keys);
    assert!(
        missing.is_empty(),
        "keys missing from the README: {missing:?}"
    );
}

#[test]
fn every_field_of_the_api_answer_is_in_the_readme() {
    let sb = Sandbox::sqlite();
    let mut cmd = sb.kitteh();
    // Sizes that stay pending (no job runs here) and sizes made within
    // the upload (below): the fields of both kinds show up.
    cmd.env("KITTEH_VARIANTS__INLINE_MAX_PIXELS", "0")
        .env("KITTEH_VARIANTS__WORKERS", "0");
    let server = Server::start_with(cmd, &["--migrate"]);
    let created = server
        .upload("a.png", "image/png", &fixtures::png(40, 30))
        .json();
    let ready = {
        let sb2 = Sandbox::sqlite();
        let server = Server::start(&sb2, &["--migrate"]);
        server
            .upload("b.png", "image/png", &fixtures::png(40, 30))
            .json()
    };
    let mut fields: Vec<String> = created.as_object().unwrap().keys().cloned().collect();
    for answer in [&created, &ready] {
        for size in answer["sizes"].as_array().unwrap() {
            fields.extend(size.as_object().unwrap().keys().cloned());
        }
    }
    fields.sort();
    fields.dedup();
    assert!(fields.len() > 15, "{fields:?}");
    let missing = undocumented(&fields);
    assert!(
        missing.is_empty(),
        "API fields missing from the README: {missing:?}"
    );
}
