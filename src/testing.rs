//! Unit-test support: a libvirt test driver of a test's own.
//!
//! `test:///default` is ONE driver per process, shared by every unit test in
//! the binary: a test that makes a snapshot there changes what a parallel test
//! sees. A `test:///<file>` URI gets a fresh driver for each connection, loaded
//! from the file, so tests that open [`private_host`] never see each other.

use crate::api::Host;

/// The integration tests' reader of libvirt's conformance documents: one
/// reader for both kinds of test.
#[path = "../tests/integration/conformance.rs"]
mod conformance;
pub(crate) use conformance::{conformance_document, conformance_documents};

/// The objects of libvirt's `test:///default` (domain `test` running, network
/// `default`, pool `default-pool`), as a state file for `test:///<file>`.
const DEFAULT_STATE: &str = r#"<node>
  <domain type='test'>
    <name>test</name>
    <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>
    <memory>8388608</memory>
    <currentMemory>2097152</currentMemory>
    <vcpu>2</vcpu>
    <os><type>hvm</type></os>
    <devices>
      <disk type='file' device='disk'>
        <source file='/guest/diskimage1'/>
        <target dev='vda' bus='virtio'/>
      </disk>
      <interface type='network'>
        <mac address='aa:bb:cc:dd:ee:ff'/>
        <source network='default'/>
        <target dev='testnet0'/>
      </interface>
    </devices>
  </domain>
  <network>
    <name>default</name>
    <uuid>dd8fe884-6c02-601e-7551-cca97df1c5df</uuid>
    <bridge name='virbr0'/>
    <forward/>
    <ip address='192.168.122.1' netmask='255.255.255.0'>
      <dhcp><range start='192.168.122.2' end='192.168.122.254'/></dhcp>
    </ip>
  </network>
  <pool type='dir'>
    <name>default-pool</name>
    <uuid>dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566</uuid>
    <target><path>/default-pool</path></target>
  </pool>
</node>
"#;

/// A host on a test driver nobody else uses. The driver reads its state file
/// once, at connect, so the file goes with the temp dir right away.
pub fn private_host() -> Host {
    let dir = tempfile::tempdir().expect("a temp dir for the test driver's state");
    let path = dir.path().join("host.xml");
    std::fs::write(&path, DEFAULT_STATE).expect("write the test driver's state");
    Host::open(&format!("test://{}", path.display())).expect("the test driver loads its state file")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_hosts_do_not_share_state() {
        let first = private_host();
        let second = private_host();
        let dom = first.conn().lookup_domain_by_name("test").unwrap();
        dom.create_snapshot_xml("<domainsnapshot><name>only-here</name></domainsnapshot>", 0)
            .unwrap();
        let other = second.conn().lookup_domain_by_name("test").unwrap();
        assert_eq!(dom.num_snapshots(0).unwrap(), 1);
        assert_eq!(
            other.num_snapshots(0).unwrap(),
            0,
            "the second driver saw the first's snapshot"
        );
        assert!(
            dom.is_active().unwrap(),
            "domain test starts running, as in test:///default"
        );
    }
}
