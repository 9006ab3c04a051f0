//! Benchmark baseline: N cheap libvirt calls (look up a network by name) on the
//! embedded test driver, written directly in Rust against `virt`.
use virt::connect::Connect;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let conn = Connect::open(Some("test:///default")).expect("open test:///default");
    let mut found = 0;
    for _ in 0..n {
        let net = conn.lookup_network_by_name("default").expect("lookup");
        if net.is_active().unwrap_or(false) {
            found += 1;
        }
    }
    assert_eq!(found, n);
}
