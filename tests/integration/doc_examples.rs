//! Every script function is documented with an example, and every example runs
//! (each in its own process, so each sees a fresh embedded test driver).
use crate::support::Script;

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
