//! Benchmark baseline: the least a Rust program must do to start and open
//! libvirt's embedded test driver (benches/runner.sh compares `virtscript run`
//! of an empty script against this).
fn main() {
    let conn = virt::connect::Connect::open(Some("test:///default")).expect("open test:///default");
    drop(conn);
}
