//! Baseline for benches/vms.sh: define and undefine N VMs on a libvirt URI
//! straight through the `virt` crate, with the XML `HOST.define_vm` writes.
//!
//!     cargo run --release --example baseline_vms -- [URI] [N]
use virt::connect::Connect;

fn main() -> Result<(), virt::error::Error> {
    let mut args = std::env::args().skip(1);
    let uri = args.next().unwrap_or_else(|| "test:///default".into());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(500);
    let conn = Connect::open(Some(&uri))?;
    for i in 0..n {
        let xml = format!(
            "<domain type='qemu'><name>b{i}</name><memory unit='KiB'>262144</memory><vcpu>1</vcpu>\
             <os><type>hvm</type><boot dev='network'/><boot dev='hd'/></os><features><acpi/><apic/></features>\
             <on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>\
             <devices><interface type='network'><source network='default'/><model type='virtio'/></interface>\
             <serial type='pty'><target port='0'/></serial><console type='pty'><target type='serial' port='0'/></console>\
             <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel></devices></domain>"
        );
        let dom = conn.define_domain_xml(&xml)?;
        dom.undefine()?;
    }
    Ok(())
}
