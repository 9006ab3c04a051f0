//! Benchmark baseline: define, start, stop and undefine 200 networks on the
//! test driver with the `virt` crate directly (what benches/networks.rhai does).
use virt::connect::Connect;

fn main() -> Result<(), virt::error::Error> {
    let count: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let conn = Connect::open(Some("test:///default"))?;
    let mut nets = Vec::with_capacity(count);
    for i in 0..count {
        let xml = format!(
            "<network><name>bench{i}</name><forward mode='nat'/><bridge name='vbench{i}'/>\
             <ip address='10.100.{i}.1' prefix='24'><dhcp>\
             <range start='10.100.{i}.2' end='10.100.{i}.254'/></dhcp></ip></network>"
        );
        nets.push(conn.define_network_xml(&xml)?);
    }
    for n in &nets {
        n.create()?;
    }
    for n in &nets {
        n.destroy()?;
    }
    for n in &nets {
        n.undefine()?;
    }
    println!("{} networks", nets.len());
    Ok(())
}
