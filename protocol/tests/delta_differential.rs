//! Differential test: the Rust Delta type against the real npm `rich-text`
//! 4.1.0 / `quill-delta` 4.2.2.
//!
//! Runs `node tests/node/gen/delta-cases.mjs`, which prints random cases with
//! the JavaScript results, and checks that Rust computes exactly the same
//! (the Delta functions, and `Document::apply` for ops that fit).
//! Node.js and the npm packages (`cd tests/node && npm ci`) are required: when
//! they are missing this test fails. `DELTA_CASES_SEED` and
//! `DELTA_CASES_COUNT` choose other cases.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};

use rt_protocol::delta::{Attributes, Delta, DeltaError, Document, Insert, Op, transform_presence};
use serde_json::Value;

const MIN_CASES: usize = 10_000;

/// Like `Delta::from_value`, but also accepts the zero-length ops that the
/// generator's "wild" cases contain (JavaScript accepts them silently).
fn lenient(value: &Value) -> Delta {
    let ops = value.as_array().expect("ops array");
    Delta::from_ops(ops.iter().map(lenient_op).collect())
}

fn lenient_op(value: &Value) -> Op {
    let object = value.as_object().expect("op object");
    let attributes: Option<Attributes> = object
        .get("attributes")
        .map(|a| a.as_object().expect("attributes object").clone())
        .filter(|a| !a.is_empty());
    let count = |key: &str| object[key].as_u64().expect("count") as usize;
    if let Some(insert) = object.get("insert") {
        let insert = match insert {
            Value::String(text) => Insert::Text(text.clone()),
            Value::Object(embed) => Insert::Embed(embed.clone()),
            other => panic!("bad insert {other}"),
        };
        Op::Insert { insert, attributes }
    } else if object.contains_key("retain") {
        Op::Retain {
            n: count("retain"),
            attributes,
        }
    } else {
        Op::Delete(count("delete"))
    }
}

fn check_ops(case: &Value, name: &str, got: &Delta, failures: &mut Vec<String>) {
    let expected = &case["result"][name];
    let got = got.ops_value();
    if &got != expected {
        failures.push(format!(
            "case {} ({}): {name}\n  doc {}\n  a   {}\n  b   {}\n  c   {}\n  js   {expected}\n  rust {got}",
            case["i"], case["kind"], case["doc"], case["a"], case["b"], case["c"]
        ));
    }
}

#[test]
fn rust_matches_the_npm_rich_text_type() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let seed = std::env::var("DELTA_CASES_SEED").unwrap_or_else(|_| "1".into());
    let count = std::env::var("DELTA_CASES_COUNT").unwrap_or_else(|_| MIN_CASES.to_string());
    let wanted: usize = count.parse().expect("DELTA_CASES_COUNT is a number");
    // Stream the cases: Rust checks while Node is still generating.
    let mut child = Command::new("node")
        .arg("tests/node/gen/delta-cases.mjs")
        .args(["--seed", &seed, "--count", &count])
        .current_dir(&root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run `node`: Node.js >= 20 is required for this test");
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));

    let mut cases = 0;
    let mut failures = Vec::new();
    for line in stdout.lines() {
        let line = line.expect("generator output is UTF-8");
        let case: Value = serde_json::from_str(&line).expect("generator prints JSON lines");
        cases += 1;
        let doc = lenient(&case["doc"]);
        let a = lenient(&case["a"]);
        let b = lenient(&case["b"]);
        let c = lenient(&case["c"]);

        check_ops(&case, "doc_a", &doc.compose(&a), &mut failures);
        check_ops(&case, "a_c", &a.compose(&c), &mut failures);
        if !case["result"]["a_b"].is_null() {
            check_ops(&case, "a_b", &a.compose(&b), &mut failures);
            check_ops(&case, "b_a", &b.compose(&a), &mut failures);
        }
        check_ops(&case, "t_ab_true", &a.transform(&b, true), &mut failures);
        check_ops(&case, "t_ab_false", &a.transform(&b, false), &mut failures);
        check_ops(&case, "t_ba_true", &b.transform(&a, true), &mut failures);
        check_ops(&case, "t_ba_false", &b.transform(&a, false), &mut failures);
        check_ops(&case, "inv", &a.invert(&doc), &mut failures);

        // The stored Document gives the same result as JavaScript's apply
        // whenever it accepts the op; the generator only makes ops that fit
        // except for retains past the end, which it must reject.
        if case["kind"] == "doc" {
            let mut document = Document::from_delta(&doc).expect("generated documents are valid");
            match document.apply(&a) {
                Ok(()) => check_ops(&case, "doc_a", &document.to_delta(), &mut failures),
                Err(DeltaError::OutOfRange { .. }) => {}
                Err(err) => failures.push(format!(
                    "case {}: Document rejected {}: {err}",
                    case["i"], case["a"]
                )),
            }
        }

        for entry in case["result"]["tp"].as_array().expect("tp") {
            let position = entry[0].as_u64().expect("position") as usize;
            let with = a.transform_position(position, true);
            let without = a.transform_position(position, false);
            if entry[1] != with || entry[2] != without {
                failures.push(format!(
                    "case {}: transformPosition({position}) of {}: js {} {}, rust {with} {without}",
                    case["i"], case["a"], entry[1], entry[2]
                ));
            }
        }
        for (name, own) in [("presence_own", true), ("presence_other", false)] {
            let got = transform_presence(&case["range"], &a, own).expect("valid range");
            if got != case["result"][name] {
                failures.push(format!(
                    "case {}: {name} of {} over {}: js {}, rust {got}",
                    case["i"], case["range"], case["a"], case["result"][name]
                ));
            }
        }
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("piped stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    let status = child.wait().expect("wait for node");
    assert!(
        status.success(),
        "the case generator failed (did `cd tests/node && npm ci` run?):\n{stderr}"
    );
    assert_eq!(
        cases, wanted,
        "the generator printed {cases} cases, expected {wanted}"
    );
    let shown: Vec<_> = failures.iter().take(8).cloned().collect();
    assert!(
        failures.is_empty(),
        "{} mismatches; first ones:\n{}",
        failures.len(),
        shown.join("\n")
    );
}
