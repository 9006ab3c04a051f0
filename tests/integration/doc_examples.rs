//! Every script function is documented with an example, and every example runs
//! (each in its own process, so each sees a fresh embedded test driver).
use crate::support::{asserts_something, outside_catch, Script};

#[test]
fn every_function_has_a_doc_comment_with_an_example() {
    let missing: Vec<String> = virtscript::doc::entries()
        .into_iter()
        .filter(|f| f.name != "to_string" && f.examples().is_empty())
        .map(|f| f.signature)
        .collect();
    assert!(
        missing.is_empty(),
        "functions without a ```rhai example: {missing:#?}"
    );
}

#[test]
fn outside_catch_drops_only_catch_blocks() {
    assert_eq!(
        outside_catch(
            "let a = 1;\ntry { f(); } catch (e) { assert(false); if x { y } }\nassert(a == 1);"
        ),
        "let a = 1;\ntry { f(); } \nassert(a == 1);"
    );
    assert!(!asserts_something(
        "try { f(); } catch (e) { assert(e.message != \"\"); }"
    ));
    assert!(!asserts_something("print(f());"));
    assert!(asserts_something("let v = f();\nassert_eq(v, 2);"));
}

#[test]
fn every_doc_example_asserts_what_it_did() {
    let vacuous: Vec<String> = virtscript::doc::entries()
        .into_iter()
        .flat_map(|entry| {
            entry
                .examples()
                .into_iter()
                .filter(|e| !asserts_something(e))
                .map(move |e| format!("{}:\n{e}", entry.signature))
        })
        .collect();
    assert!(
        vacuous.is_empty(),
        "{} doc examples assert nothing outside catch:\n{}",
        vacuous.len(),
        vacuous.join("\n")
    );
}

#[test]
fn every_doc_example_runs() {
    let mut failures = Vec::new();
    for entry in virtscript::doc::entries() {
        for example in entry.examples() {
            let run = Script::new(&example).run();
            if run.code != 0 {
                failures.push(format!(
                    "{}:\n{example}\n{}",
                    entry.signature,
                    run.diagnostics()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "failing doc examples:\n{}",
        failures.join("\n")
    );
}
