//! VM device keys (`graphics`, `video`, `sound`, `console`, `controllers`,
//! `filesystems`, `tpm`, `rng`, `watchdog`, `memballoon`, `features`): the
//! XML they make, `vm.config`/`vm.edit` round trips, refused values, and a
//! guest with a TPM, an RNG, a watchdog, virtiofs and video on the real daemon.

use crate::support::{live_uri, tiny_guest, unique, virsh, Script, VmGuard};

/// Every key, short forms and maps: the elements libvirt's schema wants,
/// in the dry run and in what the driver keeps after define.
#[test]
fn device_keys_make_libvirts_elements() {
    let script = r#"
let spec = #{ name: "dev", virt_type: "qemu", pxe: true,
    graphics: #{ type: "spice", listen: "0.0.0.0", port: 5999, password: "hunter2" },
    video: #{ model: "virtio", heads: 2, vram: "16M" }, sound: #{ model: "ich9", codec: "micro" },
    console: "virtio",
    controllers: [#{ type: "virtio-serial", ports: 8 }, #{ type: "scsi", model: "virtio-scsi", index: 0, queues: 2 },
                  #{ type: "usb", model: "qemu-xhci" }],
    filesystems: [#{ source: "/var/lib/libvirt/images/share", target: "share", driver: "virtiofs" },
                  #{ source: "/var/lib/libvirt/images/ro", target: "ro", readonly: true }],
    tpm: "emulator", rng: #{ backend: "/dev/random", rate: #{ bytes: 1024, period: 2000 } },
    watchdog: #{ model: "ib700", action: "inject-nmi" }, memballoon: "none",
    features: #{ smm: true, vmport: false, kvm: #{ hidden: true },
                 hyperv: #{ relaxed: true, spinlocks: 8191, vendor_id: "virtscript" } } };
let dry = spec; dry.dry_run = true;
print(`DRY ${HOST.create_vm(dry)}`);
let vm = HOST.define_vm(spec);
print(`DEFINED ${vm.inactive_xml}`);
"#;
    let run = Script::new(script).run();
    run.ok();
    let dry = run.stdout.lines().find(|l| l.starts_with("DRY ")).unwrap();
    for want in [
        "<memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>",
        "<features><acpi/><apic/><hyperv><relaxed state='on'/><spinlocks state='on' retries='8191'/><vendor_id state='on' value='virtscript'/></hyperv><kvm><hidden state='on'/></kvm><vmport state='off'/><smm state='on'/></features>",
        "<controller type='virtio-serial' ports='8'/><controller type='scsi' index='0' model='virtio-scsi'><driver queues='2'/></controller><controller type='usb' model='qemu-xhci'/>",
        "<filesystem type='mount'><driver type='virtiofs'/><source dir='/var/lib/libvirt/images/share'/><target dir='share'/></filesystem>",
        "<filesystem type='mount'><source dir='/var/lib/libvirt/images/ro'/><target dir='ro'/><readonly/></filesystem>",
        "<console type='pty'><target type='virtio' port='0'/></console>",
        "<channel type='spicevmc'><target type='virtio' name='com.redhat.spice.0'/></channel>",
        "<tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>",
        "<graphics type='spice' port='5999' autoport='no' listen='0.0.0.0'/>",
        "<sound model='ich9'><codec type='micro'/></sound>",
        "<video><model type='virtio' vram='16384' heads='2'/></video>",
        "<watchdog model='ib700' action='inject-nmi'/>",
        "<memballoon model='none'/>",
        "<rng model='virtio'><rate bytes='1024' period='2000'/><backend model='random'>/dev/random</backend></rng>",
    ] {
        assert!(dry.contains(want), "{want}\n{dry}");
    }
    // The serial port stays beside a virtio console.
    assert!(
        dry.contains("<serial type='pty'><target port='0'/></serial>"),
        "{dry}"
    );
    // The password is the definition's, never the output's.
    assert!(!run.stdout.contains("hunter2"), "{}", run.stdout);
    let defined = &run.stdout[run.stdout.find("DEFINED ").unwrap()..];
    for want in [
        "<tpm model='tpm-crb'>",
        "<backend type='emulator' version='2.0'/>",
        "<watchdog model='ib700' action='inject-nmi'/>",
        "<driver type='virtiofs'/>",
        "<model type='virtio' vram='16384' heads='2' primary='yes'/>",
        "<smm state='on'/>",
        "<hidden state='on'/>",
        "<target type='virtio' port='0'/>",
    ] {
        assert!(defined.contains(want), "{want}\n{defined}");
    }
}

/// `vm.config` shows each key in the form the spec takes; handing the map
/// back changes nothing; a change touches only its device, keeping what the
/// model does not know (addresses, aliases, other features).
#[test]
fn config_and_edit_round_trip_and_keep_what_is_not_modelled() {
    let script = r#"
let xml = `<domain type='test'><name>keep</name><memory unit='KiB'>524288</memory><vcpu>1</vcpu>
<os><type>hvm</type><boot dev='hd'/></os>
<features><acpi/><apic/><pae/><hyperv mode='custom'><relaxed state='on'/><stimer state='on'><direct state='on'/></stimer></hyperv><kvm><poll-control state='on'/></kvm><ioapic driver='qemu'/></features>
<devices>
<controller type='usb' index='0' model='ich9-ehci1'><address type='pci' domain='0x0000' bus='0x00' slot='0x07' function='0x7'/></controller>
<filesystem type='mount' accessmode='mapped'><source dir='/var/lib/libvirt/images/share'/><target dir='share'/><address type='pci' domain='0x0000' bus='0x00' slot='0x09' function='0x0'/></filesystem>
<tpm model='tpm-tis'><backend type='emulator' version='2.0'><active_pcr_banks><sha256/></active_pcr_banks></backend></tpm>
<video><model type='qxl' ram='65536' vram='65536' vgamem='16384' heads='1' primary='yes'/><address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'/></video>
<watchdog model='i6300esb' action='reset'><address type='pci' domain='0x0000' bus='0x00' slot='0x0a' function='0x0'/></watchdog>
<rng model='virtio'><backend model='random'>/dev/urandom</backend><address type='pci' domain='0x0000' bus='0x00' slot='0x0b' function='0x0'/></rng>
</devices></domain>`;
let vm = HOST.define_vm_xml(xml);
let before = vm.inactive_xml;
let cfg = vm.config;
print(`CFG ${cfg.features.to_json()} ${cfg.video.to_json()} ${cfg.tpm.to_json()} ${cfg.filesystems[0].to_json()} ${cfg.rng.to_json()} ${cfg.watchdog.to_json()}`);
// Every key handed back as shown: nothing changes.
vm.edit(|c| { for k in cfg.keys() { c[k] = cfg[k]; } });
assert_eq(vm.inactive_xml, before);
// The map forms, changed: only the changed parts move.
vm.edit(|c| {
    c.video = #{ model: "virtio", heads: 1 };
    c.features.smm = true;
    c.features.hyperv.vapic = true;
    c.watchdog.action = "pause";
    c.filesystems[0].readonly = true;
    c.tpm = #{ model: "tpm-crb" };
    c.rng = "/dev/hwrng";
    c.sound = "ac97";
});
print(`AFTER ${vm.inactive_xml}`);
print(`CFG2 ${vm.config.video.to_json()} ${vm.config.sound} ${vm.config.rng.backend}`);
// A 9p share turned virtiofs: the mapped mode is refused while it is asked
// for, and goes when the map leaves it out; shared memory comes.
try { vm.edit(|c| c.filesystems[0].driver = "virtiofs"); print("ACCEPTED"); }
catch (e) { print(`fs: ${e.field} ${e.value}`); }
vm.edit(|c| { c.filesystems[0] = #{ source: c.filesystems[0].source, target: "share", driver: "virtiofs" }; });
let x = vm.inactive_xml;
assert(x.contains("<driver type='virtiofs'/>") && !x.contains("mapped") && x.contains("<access mode='shared'/>"), x);
"#;
    let run = Script::new(script).run();
    run.ok()
        .stdout_has(r#"CFG {"acpi":true,"apic":true,"hyperv":{"mode":"custom","relaxed":true,"stimer":true},"kvm":null,"pae":true,"smm":null,"vmport":null}"#)
        .stdout_has(r#"{"accel3d":null,"heads":1,"model":"qxl","vram":64}"#)
        .stdout_has(r#"{"model":"tpm-tis","type":"emulator","version":"2.0"}"#)
        .stdout_has(r#"{"accessmode":"mapped","driver":"9p","readonly":false,"source":"/var/lib/libvirt/images/share","target":"share"}"#)
        .stdout_has(r#"{"backend":"/dev/urandom","model":"virtio","rate":null}"#)
        .stdout_has(r#"{"action":"reset","model":"i6300esb"}"#)
        .stdout_has(r#"CFG2 {"accel3d":null,"heads":1,"model":"virtio","vram":null} #{"codec": (), "model": "ac97"} /dev/hwrng"#)
        .stdout_has("fs: cfg.filesystems[0].accessmode mapped");
    assert!(!run.stdout.contains("ACCEPTED"), "{}", run.stdout);
    let after = &run.stdout[run.stdout.find("AFTER ").unwrap()..];
    for want in [
        // qxl's ram/vgamem are gone with the model; the address stays.
        "<model type='virtio' heads='1' primary='yes'/>",
        "<address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'/>",
        "<stimer state='on'>",
        "<direct state='on'/>",
        "<vapic state='on'/>",
        "<poll-control state='on'/>",
        "<ioapic driver='qemu'/>",
        "<smm state='on'/>",
        "<watchdog model='i6300esb' action='pause'>",
        "slot='0x0a'",
        "<readonly/>",
        "accessmode='mapped'",
        "<tpm model='tpm-crb'>",
        "<active_pcr_banks>",
        "<backend model='random'>/dev/hwrng</backend>",
        "slot='0x0b'",
        "<sound model='ac97'",
        "model='ich9-ehci1'",
    ] {
        assert!(after.contains(want), "{want}\n{after}");
    }
}

/// Devices removed with `()`; the console's target changed; graphics passwords kept
/// across edits and never shown; spice's agent channel follows spice.
#[test]
fn edit_removes_devices_and_keeps_the_hidden_password() {
    let script = r#"
let vm = HOST.define_vm(#{ name: "pw", virt_type: "qemu", pxe: true,
    graphics: #{ type: "vnc", password: "hunter2" }, watchdog: "i6300esb", tpm: "emulator" });
vm.edit(|c| c.graphics.port = 5907);
vm.edit(|c| { c.watchdog = (); c.tpm = (); c.console = "virtio"; });
let x = vm.inactive_xml;
assert(!x.contains("<watchdog") && !x.contains("<tpm"), x);
assert(x.contains("<target type='virtio' port='0'/>"), x);
assert(x.contains("<serial type='pty'>"), x);
assert(x.contains("<graphics type='vnc' port='5907' autoport='no' listen='127.0.0.1'>"), x);
print(`CONFIG ${vm.config.to_debug()} XML ${x}`);
vm.edit(|c| c.graphics = #{ type: "spice" });
assert(vm.inactive_xml.contains("<channel type='spicevmc'>"), vm.inactive_xml);
vm.edit(|c| c.graphics = "vnc");
assert(!vm.inactive_xml.contains("spicevmc"), vm.inactive_xml);
try { vm.edit(|c| c.features = ()); print("ACCEPTED"); } catch (e) { print(`features: ${e.field} ${e.message}`); }
try { vm.edit(|c| c.graphics = #{ type: "vnc", password: "far-too-long" }); print("ACCEPTED"); }
catch (e) { print(`pw: ${e.field}|${e.value}|${e.message}`); }
"#;
    let run = Script::new(script).run();
    run.ok()
        .stdout_has("features: cfg.features cfg.features: must be set")
        .stdout_has("pw: cfg.graphics.password|(hidden)|cfg.graphics.password: a VNC password has at most 8 characters");
    assert!(!run.stdout.contains("hunter2"), "{}", run.stdout);
    assert!(!run.stdout.contains("far-too-long"), "{}", run.stdout);
    assert!(!run.stdout.contains("ACCEPTED"), "{}", run.stdout);
}

/// A spec that fails names the field and value (with "did you mean" and the
/// known list for names), points at the script line, and creates nothing.
#[track_caller]
fn refused(keys: &str, field: &str, value: &str, message: &str) {
    let script = format!(
        r#"let before = HOST.vms().len();
try {{
    HOST.create_vm(#{{ name: "bad", virt_type: "qemu", pxe: true, {keys} }});
    print("CREATED");
}} catch (e) {{
    print(`field=${{e.field}}|value=${{e.value}}|line=${{e.line}}|${{e.message}}`);
}}
assert_eq(HOST.vms().len(), before);
assert(HOST.find_vm("bad") == ());
"#
    );
    let run = Script::new(&script).run();
    run.ok()
        .stdout_has(&format!("field={field}|value={value}|line=3|"))
        .stdout_has(message);
    assert!(!run.stdout.contains("CREATED"), "{}", run.stdout);
}

#[test]
fn bad_device_values_name_the_field_the_value_and_the_line() {
    refused(
        r#"video: "qxk""#,
        "video",
        "qxk",
        "not a video model libvirt knows; did you mean \"qxl\"? (known: virtio, qxl, vga, cirrus, bochs, ramfb, none,",
    );
    refused(
        r#"video: #{ model: "virtio", heds: 2 }"#,
        "video.heds",
        "2",
        "did you mean 'heads'?",
    );
    refused(
        r#"video: #{ model: "qxl", accel3d: true }"#,
        "video.accel3d",
        "true",
        "3D acceleration needs the virtio model",
    );
    refused(
        r#"sound: "ihc9""#,
        "sound",
        "ihc9",
        "did you mean \"ich9\"?",
    );
    refused(
        r#"graphics: "vnx""#,
        "graphics",
        "vnx",
        "not a graphics type libvirt knows; did you mean \"vnc\"? (known: vnc, spice)",
    );
    refused(
        r#"graphics: #{ type: "vnc", listen: "localhost" }"#,
        "graphics.listen",
        "localhost",
        "must be an IP address",
    );
    refused(
        r#"graphics: #{ type: "vnc", port: 80 }"#,
        "graphics.port",
        "80",
        "must be between 5900 and 65535",
    );
    refused(
        r#"graphics: #{ type: "vnc", pasword: "hunter2" }"#,
        "graphics.pasword",
        "(hidden)",
        "did you mean 'password'?",
    );
    refused(
        r#"console: "virtoi""#,
        "console",
        "virtoi",
        "did you mean \"virtio\"?",
    );
    refused(
        r#"controllers: [#{ type: "scsi", model: "virtio-scsii" }]"#,
        "controllers[0].model",
        "virtio-scsii",
        "not a scsi controller model libvirt knows; did you mean \"virtio-scsi\"?",
    );
    refused(
        r#"controllers: [#{ type: "sata", model: "ahci" }]"#,
        "controllers[0].model",
        "ahci",
        "sata controllers have no model",
    );
    refused(
        r#"controllers: [#{ type: "usb", index: 0 }, #{ type: "usb", index: 0 }]"#,
        "controllers[1].index",
        "0",
        "already a usb controller with this index",
    );
    refused(
        r#"filesystems: [#{ source: "/var/lib/libvirt/images/s", target: "s", driver: "virtiofsd" }]"#,
        "filesystems[0].driver",
        "virtiofsd",
        "did you mean \"virtiofs\"?",
    );
    refused(
        r#"filesystems: [#{ source: "/var/lib/libvirt/images/s", target: "s", driver: "virtiofs", readonly: true }]"#,
        "filesystems[0].readonly",
        "true",
        "virtiofs cannot share read-only",
    );
    refused(
        r#"filesystems: [#{ source: "/etc", target: "etc" }]"#,
        "filesystems[0].source",
        "/etc",
        "allow_path",
    );
    refused(
        r#"filesystems: [#{ target: "t" }]"#,
        "filesystems[0].source",
        "()",
        "the host directory to share (source) is required",
    );
    refused(
        r#"tpm: "emulater""#,
        "tpm",
        "emulater",
        "did you mean \"emulator\"?",
    );
    refused(
        r#"tpm: #{ model: "tpm-crb", version: "1.2" }"#,
        "tpm.version",
        "1.2",
        "tpm-crb is a TPM 2.0 interface",
    );
    refused(
        r#"tpm: #{ model: "tpm-tiss" }"#,
        "tpm.model",
        "tpm-tiss",
        "did you mean \"tpm-tis\"? (known: tpm-crb, tpm-tis, tpm-spapr, spapr-tpm-proxy)",
    );
    refused(
        r#"rng: "/dev/urandon""#,
        "rng",
        "/dev/urandon",
        "did you mean \"/dev/urandom\"?",
    );
    refused(
        r#"watchdog: #{ model: "i6300esb", action: "reboot" }"#,
        "watchdog.action",
        "reboot",
        "not a watchdog action libvirt knows (known: reset, shutdown, poweroff, pause, none, dump, inject-nmi)",
    );
    refused(
        r#"watchdog: "i6300""#,
        "watchdog",
        "i6300",
        "not a watchdog model libvirt knows",
    );
    refused(
        r#"memballoon: "virtoi""#,
        "memballoon",
        "virtoi",
        "did you mean \"virtio\"?",
    );
    refused(
        r#"features: #{ hyperv: #{ spinlocks: 100 } }"#,
        "features.hyperv.spinlocks",
        "100",
        "at least 4095",
    );
    refused(
        r#"features: #{ hyperv: #{ relaxd: true } }"#,
        "features.hyperv.relaxd",
        "true",
        "did you mean 'relaxed'?",
    );
    refused(
        r#"features: #{ acpi: "yes" }"#,
        "features.acpi",
        "yes",
        "must be true or false",
    );
}

/// The path rule covers shared directories in `edit` and `define_vm_xml` too.
#[test]
fn shared_directories_follow_the_path_rule_everywhere() {
    let script = r#"
let vm = HOST.define_vm(#{ name: "fs", virt_type: "qemu", pxe: true });
try { vm.edit(|c| c.filesystems = [#{ source: "/etc", target: "etc" }]); print("ACCEPTED"); }
catch (e) { print(`edit: ${e.kind} ${e.field} ${e.value}`); }
assert(!vm.inactive_xml.contains("<filesystem"));
let xml = HOST.create_vm(#{ name: "fs2", virt_type: "qemu", pxe: true, allow_path: true,
    filesystems: [#{ source: "/etc", target: "etc" }], dry_run: true }).final;
try { HOST.define_vm_xml(xml); print("ACCEPTED"); } catch (e) { print(`xml: ${e.kind} ${e.field} ${e.value}`); }
assert(HOST.find_vm("fs2") == ());
"#;
    let run = Script::new(script).run();
    run.ok()
        .stdout_has("edit: refused devices.filesystem[0].source /etc")
        .stdout_has("xml: refused devices.filesystem[0].source /etc");
    assert!(!run.stdout.contains("ACCEPTED"), "{}", run.stdout);
}

/// On the real daemon (TCG): a guest with an emulated TPM (swtpm), a virtio
/// RNG, a watchdog, a virtiofs share (virtiofsd) and a virtio GPU defined
/// and started; the running domain has them all.
#[test]
fn live_a_guest_with_tpm_rng_watchdog_virtiofs_and_video_starts() {
    let uri = live_uri();
    let dir = tiny_guest();
    let name = unique("devs");
    let _cleanup = VmGuard(vec![uri.clone()], name.clone());
    let share = tempfile::tempdir().expect("share dir");
    std::fs::write(share.path().join("hello"), "from the host").unwrap();
    let share = share.path().display().to_string();
    let script = format!(
        r#"
let vm = HOST.define_vm(#{{ name: "{name}", memory: 256, virt_type: "qemu", networks: [],
    kernel: "{dir}/vmlinuz", initrd: "{dir}/initrd.img", cmdline: "console=ttyS0",
    tpm: "emulator", rng: "/dev/urandom", watchdog: #{{ model: "i6300esb", action: "poweroff" }},
    filesystems: [#{{ source: "{share}", target: "share", driver: "virtiofs" }}], allow_path: true,
    video: "virtio", graphics: #{{ type: "vnc", password: "s3cret" }} }});
// An edit of the display keeps the password it does not show.
vm.edit(|c| c.graphics.listen = "127.0.0.2");
vm.start();
assert_eq(vm.state, "running");
print(`config ${{vm.config.tpm.model}} ${{vm.config.filesystems[0].driver}}`);
"#
    );
    Script::new(&script)
        .connect(&uri)
        .run()
        .ok()
        .stdout_has("config tpm-crb virtiofs");
    let live = virsh(&uri, &["dumpxml", &name]);
    for want in [
        "<tpm model='tpm-crb'>",
        "<backend type='emulator' version='2.0'",
        "<rng model='virtio'>",
        "<backend model='random'>/dev/urandom</backend>",
        "<watchdog model='i6300esb' action='poweroff'>",
        "<driver type='virtiofs'",
        &format!("<source dir='{share}'/>"),
        "<target dir='share'/>",
        "<source type='memfd'/>",
        "<access mode='shared'/>",
        "<model type='virtio'",
    ] {
        assert!(live.contains(want), "{want}\n{live}");
    }
    assert!(!live.contains("s3cret"), "{live}");
    let secure = virsh(&uri, &["dumpxml", "--security-info", &name]);
    assert!(secure.contains("passwd='s3cret'"), "{secure}");
    assert!(secure.contains("listen='127.0.0.2'"), "{secure}");
    let state = virsh(&uri, &["domstate", &name]);
    assert_eq!(state.trim(), "running");
}
