//! The host's read-only objects: node devices (`virsh nodedev-list`) and
//! secrets (`virsh secret-list`, never a value).
use virt::connect::Connect;

use crate::support::{live_uri, unique, virsh, Script};

#[test]
fn node_devices_print_as_a_table_and_as_json() {
    let run = Script::new("HOST.node_devices(\"scsi_host\")").run();
    run.ok()
        .stdout_has("Name")
        .stdout_has("Capabilities")
        .stdout_has("scsi_host1 ");
    let run = Script::new("HOST.node_device(\"scsi_host11\")")
        .arg("--json")
        .run();
    run.ok();
    let value: serde_json::Value = serde_json::from_str(&run.stdout).expect("stdout is JSON");
    assert_eq!(value["type"], "NodeDevice");
    assert_eq!(value["parent"], "scsi_host1");
    assert_eq!(value["capabilities"], serde_json::json!(["scsi_host"]));
    assert_eq!(value["pci"], serde_json::Value::Null);
}

#[test]
fn an_unknown_node_device_is_not_found_with_the_closest_name() {
    let run = Script::new("HOST.node_device(\"scsi_hots1\")").run();
    run.code(1)
        .stderr_has("no node device named \"scsi_hots1\"")
        .stderr_has("did you mean \"scsi_host1\"?");
}

#[test]
fn live_node_devices_are_virsh_nodedev_list() {
    let uri = live_uri();
    let mut expected: Vec<String> = virsh(&uri, &["nodedev-list", "--cap", "pci"])
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    expected.sort();
    let script = format!(
        r#"
        let pci = HOST.node_devices("pci");
        assert_eq(pci.map(|d| d.name), {expected:?});
        for d in pci {{
            let a = d.pci;
            // pci_DDDD_BB_SS_F is the address libvirt names the device by
            let name = "pci_" + a.address;
            name.replace(":", "_");
            name.replace(".", "_");
            assert_eq(d.name, name);
            assert(d.capabilities.contains("pci"));
            assert(d.xml.contains("<name>" + d.name + "</name>"));
            assert_eq(HOST.node_device(d.name).parent, d.parent);
        }}
        "#
    );
    Script::new(&script).connect(&uri).run().ok();
}

/// Undefines the secret when the test ends, also when it fails.
struct SecretGuard(virt::secret::Secret);

impl Drop for SecretGuard {
    fn drop(&mut self) {
        let _ = self.0.undefine();
    }
}

#[test]
fn live_secrets_show_usage_and_uuid_but_never_the_value() {
    let uri = live_uri();
    let conn = Connect::open(Some(&uri)).expect("the daemon answers");
    let usage = unique("secret");
    let xml = format!(
        "<secret ephemeral='no' private='no'><description>virtscript test</description>\
         <usage type='ceph'><name>{usage}</name></usage></secret>"
    );
    let secret = SecretGuard(conn.define_secret_xml(&xml, 0).expect("secret defined"));
    let value = format!("not-to-be-printed-{}", std::process::id());
    secret.0.set_value(value.as_bytes(), 0).expect("value set");
    let uuid = secret.0.uuid_string().unwrap();
    let script = format!(
        r#"
        let mine = HOST.secrets().filter(|s| s.uuid == "{uuid}");
        assert_eq(mine.len(), 1);
        let s = mine[0];
        assert_eq(s.usage, "ceph");
        assert_eq(s.usage_id, "{usage}");
        assert_eq(s.description, "virtscript test");
        assert_eq(s.ephemeral, false);
        assert_eq(s.is_private, false);
        print(s);
        print(mine);
        mine
        "#
    );
    for json in [false, true] {
        let mut run = Script::new(&script).connect(&uri);
        if json {
            run = run.arg("--json");
        }
        let run = run.run();
        run.ok().stdout_has(&uuid).stdout_has(&usage);
        assert!(
            !run.stdout.contains(&value) && !run.stderr.contains(&value),
            "a secret's value was printed:\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
}

#[test]
fn no_code_reads_a_secret_value() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    let mut stack = vec![std::path::PathBuf::from(dir)];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            for call in ["virSecretGetValue", "secret.value(", ".raw.value("] {
                assert!(!text.contains(call), "{} calls {call}", path.display());
            }
        }
    }
}
