//! The same requests to Debian's virt-install (`--print-xml`) and to
//! `HOST.create_vm(#{ ..., dry_run: true })` on the real daemon give the same
//! VM: the facts that decide what the guest sees and can do are compared
//! per phase (install, final). virt-install is a hard requirement (package
//! virtinst, in tools/libvirtd-netns.sh's apt list): a missing one fails.
//!
//! Left out of the comparison because they must differ: UUIDs, MACs,
//! display ports and listen addresses, the emulator path, disk source paths
//! (virt-install names new volumes itself), `<driver>` details. Where
//! virtscript keeps a documented default of its own (create_vm's
//! "Differences from virt-install"), the case lists the fact and both values;
//! the test fails when any other fact differs, or when a listed difference
//! is gone (then the list is out of date).
use std::collections::BTreeMap;
use std::process::Command;

use virtscript::xml::tree::Element;

use crate::support::{live_uri, unique, virsh, LiveEnv, Script};

type Facts = BTreeMap<String, String>;

fn attrs(el: &Element, names: &[&str]) -> String {
    names
        .iter()
        .map(|n| el.attr(n).unwrap_or("-"))
        .collect::<Vec<_>>()
        .join(",")
}

fn list<'a>(devices: Option<&'a Element>, kind: &'a str) -> Vec<&'a Element> {
    devices
        .map(|d| d.children_named(kind).collect())
        .unwrap_or_default()
}

/// The facts of one domain document that the comparison covers.
fn facts(xml: &str) -> Facts {
    let root = Element::parse(xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
    let mut out = Facts::new();
    let mut put = |k: &str, v: String| {
        out.insert(k.to_owned(), v);
    };
    let devices = root.child("devices");
    let os = root.child("os");
    let machine = os
        .and_then(|o| o.child("type"))
        .and_then(|t| t.attr("machine"))
        .unwrap_or("pc");
    // The machine family: q35 and pc-q35-9.2 alike; no machine is libvirt's pc.
    put(
        "machine",
        if machine.contains("q35") { "q35" } else { "pc" }.into(),
    );
    put(
        "firmware",
        os.and_then(|o| o.attr("firmware")).unwrap_or("bios").into(),
    );
    let boot: Vec<String> = os
        .map(|o| {
            o.children_named("boot")
                .filter_map(|b| b.attr("dev").map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    put("boot", boot.join(","));
    put(
        "kernel",
        os.and_then(|o| o.child("kernel"))
            .map(|k| k.text())
            .is_some()
            .to_string(),
    );
    let kib = |e: &Element| {
        let n: u64 = e.text().trim().parse().unwrap_or(0);
        match e.attr("unit").unwrap_or("KiB") {
            "MiB" => n << 10,
            "GiB" => n << 20,
            _ => n,
        }
    };
    put(
        "memory",
        root.child("memory").map(kib).unwrap_or(0).to_string(),
    );
    put(
        "vcpus",
        root.child("vcpu").map(|v| v.text()).unwrap_or_default(),
    );
    put(
        "on_reboot",
        root.child("on_reboot")
            .map(|e| e.text())
            .unwrap_or_else(|| "restart".into()),
    );
    let features: Vec<String> = root
        .child("features")
        .map(|f| {
            f.elements()
                .map(|e| {
                    format!(
                        "{}{}",
                        e.name,
                        e.attr("state").map(|s| format!("={s}")).unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    put("features", features.join(","));
    let clock = root.child("clock");
    put(
        "clock",
        format!(
            "{} {}",
            clock.and_then(|c| c.attr("offset")).unwrap_or("utc"),
            clock
                .map(|c| c
                    .children_named("timer")
                    .map(|t| attrs(t, &["name", "tickpolicy", "present"]))
                    .collect::<Vec<_>>()
                    .join(" "))
                .unwrap_or_default()
        ),
    );
    let pm = root.child("pm");
    put(
        "pm",
        pm.map(|p| {
            p.elements()
                .map(|e| format!("{}={}", e.name, e.attr("enabled").unwrap_or("-")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default(),
    );
    let each = |kind: &str, f: &dyn Fn(&Element) -> String| -> String {
        list(devices, kind)
            .into_iter()
            .map(f)
            .collect::<Vec<_>>()
            .join(" ")
    };
    put(
        "disks",
        each("disk", &|d| {
            let target = d.child("target");
            format!(
                "{}:{}:{}{}",
                d.attr("device").unwrap_or("disk"),
                target.and_then(|t| t.attr("bus")).unwrap_or("-"),
                target.and_then(|t| t.attr("dev")).unwrap_or("-"),
                if d.child("source").is_some() {
                    ""
                } else {
                    "(empty)"
                }
            )
        }),
    );
    put(
        "nic_models",
        each("interface", &|i| {
            i.child("model")
                .and_then(|m| m.attr("type"))
                .unwrap_or("(libvirt's)")
                .into()
        }),
    );
    put("graphics", each("graphics", &|g| attrs(g, &["type"])));
    put(
        "video",
        each("video", &|v| {
            v.child("model")
                .and_then(|m| m.attr("type"))
                .unwrap_or("-")
                .into()
        }),
    );
    put("sound", each("sound", &|s| attrs(s, &["model"])));
    put("input", each("input", &|i| attrs(i, &["type", "bus"])));
    put(
        "redirdev",
        each("redirdev", &|r| attrs(r, &["bus", "type"])),
    );
    let controllers = |kind: &str| {
        list(devices, "controller")
            .into_iter()
            .filter(|c| c.attr("type") == Some(kind))
            .map(|c| attrs(c, &["model", "ports"]))
            .collect::<Vec<_>>()
            .join(" ")
    };
    put("usb_controllers", controllers("usb"));
    put("scsi_controllers", controllers("scsi"));
    let pci = list(devices, "controller")
        .into_iter()
        .filter(|c| c.attr("type") == Some("pci"))
        .collect::<Vec<_>>();
    put(
        "pci",
        format!(
            "root={} ports={}",
            pci.iter()
                .filter(|c| c.attr("model") == Some("pcie-root"))
                .count(),
            pci.iter()
                .filter(|c| c.attr("model") == Some("pcie-root-port"))
                .count()
        ),
    );
    // By name: the order of virtio-serial ports is no difference.
    let mut channels: Vec<String> = list(devices, "channel")
        .into_iter()
        .map(|c| {
            c.child("target")
                .and_then(|t| t.attr("name"))
                .unwrap_or("-")
                .to_owned()
        })
        .collect();
    channels.sort();
    put("channels", channels.join(" "));
    put(
        "rng",
        each("rng", &|r| {
            let b = r.child("backend");
            format!(
                "{}:{}:{}",
                r.attr("model").unwrap_or("-"),
                b.and_then(|b| b.attr("model")).unwrap_or("-"),
                b.map(|b| b.text()).unwrap_or_default()
            )
        }),
    );
    put("memballoon", each("memballoon", &|m| attrs(m, &["model"])));
    put(
        "tpm",
        each("tpm", &|t| {
            format!(
                "{}:{}",
                t.attr("model").unwrap_or("-"),
                t.child("backend")
                    .and_then(|b| b.attr("type"))
                    .unwrap_or("-")
            )
        }),
    );
    put(
        "watchdog",
        each("watchdog", &|w| attrs(w, &["model", "action"])),
    );
    out
}

/// The `<domain>` documents in `text`, in order.
fn documents(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("<domain") {
        let end = rest[start..]
            .find("</domain>")
            .map(|e| start + e + "</domain>".len())
            .unwrap_or_else(|| panic!("an unterminated domain in {text}"));
        out.push(rest[start..end].to_owned());
        rest = &rest[end..];
    }
    out
}

fn virt_install(uri: &str, args: &[String]) -> Vec<String> {
    let out = Command::new("virt-install")
        .args(["--connect", uri, "--print-xml", "--virt-type", "qemu"])
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "virt-install (package virtinst, tools/libvirtd-netns.sh install) cannot run: {e}"
            )
        });
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "virt-install {args:?} failed: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    documents(&stdout)
}

fn virtscript(uri: &str, spec: &str) -> Vec<String> {
    let script = format!(
        "let r = HOST.create_vm({spec});\n\
         if type_of(r) == \"map\" {{ print(r.install); print(r.final); }} else {{ print(r); }}\n"
    );
    let run = Script::new(&script).connect(uri).run();
    run.ok();
    documents(&run.stdout)
}

struct Case {
    what: &'static str,
    virt_install: Vec<String>,
    spec: String,
    /// (phase, fact, virt-install's value, virtscript's value): virtscript's
    /// documented own defaults.
    differs: Vec<(&'static str, &'static str, &'static str, &'static str)>,
}

fn compare(uri: &str, case: &Case) -> Vec<String> {
    let theirs = virt_install(uri, &case.virt_install);
    let ours = virtscript(uri, &case.spec);
    let mut problems = Vec::new();
    if theirs.len() != ours.len() {
        return vec![format!(
            "{}: virt-install gives {} documents, virtscript {}:\n{theirs:#?}\n{ours:#?}",
            case.what,
            theirs.len(),
            ours.len()
        )];
    }
    let phases: &[&str] = if theirs.len() == 2 {
        &["install", "final"]
    } else {
        &["final"]
    };
    for (i, phase) in phases.iter().enumerate() {
        let (a, b) = (facts(&theirs[i]), facts(&ours[i]));
        for (key, va) in &a {
            let vb = b.get(key).cloned().unwrap_or_default();
            let listed = case
                .differs
                .iter()
                .find(|(p, k, _, _)| (*p == *phase || *p == "both") && k == key);
            match listed {
                None if *va != vb => problems.push(format!(
                    "{} ({phase}): {key}: virt-install {va:?}, virtscript {vb:?}",
                    case.what
                )),
                Some((_, _, da, db)) if (va.as_str(), vb.as_str()) != (*da, *db) => {
                    problems.push(format!(
                        "{} ({phase}): {key}: listed as {da:?} vs {db:?}, now virt-install {va:?}, virtscript {vb:?}",
                        case.what
                    ))
                }
                _ => {}
            }
        }
    }
    problems
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[test]
fn live_dry_runs_match_virt_install() {
    let uri = live_uri();
    let env = LiveEnv::new(&uri, "par", 37);
    // An install ISO in the pool's directory (a path virtscript may use).
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("README"), "parity").unwrap();
    let iso = format!("{}/install.iso", env.dir);
    let made = Command::new("genisoimage")
        .args(["-quiet", "-V", "PARITY", "-o", &iso])
        .arg(src.path())
        .status()
        .expect("genisoimage (tools/libvirtd-netns.sh install)");
    assert!(made.success());
    let vol = unique("parvol");
    virsh(&uri, &["pool-refresh", &env.pool]);
    virsh(
        &uri,
        &["vol-create-as", &env.pool, &vol, "64M", "--format", "qcow2"],
    );
    let (pool, net) = (env.pool.as_str(), env.net.as_str());
    let name = |tag: &str| format!("{}-{tag}", env.prefix);
    let spec = |tag: &str, rest: &str| {
        format!(
            "#{{ name: \"{}\", virt_type: \"qemu\", dry_run: true, {rest} }}",
            name(tag)
        )
    };
    let volume = format!("HOST.pool(\"{pool}\").volume(\"{vol}\")");
    // Without os (generic), virtscript keeps its documented defaults: virtio
    // disks and NICs, the guest agent channel, and a
    // display (with SPICE's devices) only for ISO installs.
    let pxe_differs = vec![
        ("both", "disks", "disk:ide:hda", "disk:virtio:vda"),
        ("both", "nic_models", "e1000", "virtio"),
        (
            "both",
            "channels",
            "com.redhat.spice.0",
            "org.qemu.guest_agent.0",
        ),
        ("both", "graphics", "spice", ""),
        ("both", "video", "qxl", ""),
        ("both", "sound", "ich6", ""),
        ("both", "input", "tablet,usb", ""),
        ("both", "redirdev", "usb,spicevmc usb,spicevmc", ""),
        ("both", "features", "acpi,apic,vmport=off", "acpi,apic"),
        // No USB controller without a display, and libvirt's own clock and pm.
        (
            "both",
            "usb_controllers",
            "ich9-ehci1,- ich9-uhci1,- ich9-uhci2,- ich9-uhci3,-",
            "",
        ),
        (
            "both",
            "clock",
            "utc rtc,catchup,- pit,delay,- hpet,-,no",
            "utc ",
        ),
        ("both", "pm", "suspend-to-mem=no,suspend-to-disk=no", ""),
    ];
    let cases = [
        Case {
            what: "cdrom debian11, a new disk, a network",
            virt_install: strings(&[
                "--name",
                &name("cd"),
                "--memory",
                "1024",
                "--cdrom",
                &iso,
                "--disk",
                &format!("pool={pool},size=2"),
                "--network",
                &format!("network={net}"),
                "--os-variant",
                "debian11",
            ]),
            spec: spec(
                "cd",
                &format!(
                    "memory: \"1GiB\", cdrom: \"{iso}\", os: \"debian11\", \
                     disks: [#{{ pool: \"{pool}\", size: \"2GiB\" }}], networks: [#{{ network: \"{net}\" }}]"
                ),
            ),
            differs: vec![],
        },
        Case {
            what: "pxe, os generic",
            virt_install: strings(&[
                "--name",
                &name("pxe"),
                "--memory",
                "512",
                "--pxe",
                "--disk",
                &format!("pool={pool},size=1"),
                "--network",
                &format!("network={net}"),
                "--osinfo",
                "generic",
            ]),
            spec: spec(
                "pxe",
                &format!(
                    "memory: \"512MiB\", pxe: true, os: \"generic\", \
                     disks: [#{{ pool: \"{pool}\", size: \"1GiB\" }}], networks: [#{{ network: \"{net}\" }}]"
                ),
            ),
            differs: pxe_differs,
        },
        Case {
            what: "import of a volume with tpm, rng, watchdog, video, vnc",
            virt_install: strings(&[
                "--name",
                &name("imp"),
                "--memory",
                "512",
                "--import",
                "--disk",
                &format!("vol={pool}/{vol}"),
                "--network",
                "none",
                "--tpm",
                "emulator",
                "--rng",
                "/dev/urandom",
                "--watchdog",
                "i6300esb,action=poweroff",
                "--video",
                "virtio",
                "--graphics",
                "vnc",
                "--osinfo",
                "generic",
            ]),
            spec: spec(
                "imp",
                &format!(
                    "memory: \"512MiB\", import: true, disks: [#{{ volume: {volume} }}], networks: [], \
                     tpm: \"emulator\", rng: \"/dev/urandom\", \
                     watchdog: #{{ model: \"i6300esb\", action: \"poweroff\" }}, video: \"virtio\", graphics: \"vnc\""
                ),
            ),
            differs: vec![
                ("final", "disks", "disk:ide:hda", "disk:virtio:vda"),
                ("final", "channels", "", "org.qemu.guest_agent.0"),
                // Without os: libvirt's own clock and pm.
                (
                    "final",
                    "clock",
                    "utc rtc,catchup,- pit,delay,- hpet,-,no",
                    "utc ",
                ),
                ("final", "pm", "suspend-to-mem=no,suspend-to-disk=no", ""),
            ],
        },
        Case {
            what: "import debian11 on a SCSI disk",
            virt_install: strings(&[
                "--name",
                &name("scsi"),
                "--memory",
                "1024",
                "--import",
                "--disk",
                &format!("vol={pool}/{vol},bus=scsi"),
                "--network",
                &format!("network={net}"),
                "--os-variant",
                "debian11",
            ]),
            spec: spec(
                "scsi",
                &format!(
                    "memory: \"1GiB\", import: true, os: \"debian11\", \
                     disks: [#{{ volume: {volume}, bus: \"scsi\" }}], networks: [#{{ network: \"{net}\" }}]"
                ),
            ),
            differs: vec![],
        },
        Case {
            what: "UEFI cdrom debian11",
            virt_install: strings(&[
                "--name",
                &name("efi"),
                "--memory",
                "1024",
                "--cdrom",
                &iso,
                "--disk",
                &format!("pool={pool},size=2"),
                "--network",
                "none",
                "--boot",
                "uefi",
                "--os-variant",
                "debian11",
            ]),
            spec: spec(
                "efi",
                &format!(
                    "memory: \"1GiB\", cdrom: \"{iso}\", os: \"debian11\", uefi: true, networks: [], \
                     disks: [#{{ pool: \"{pool}\", size: \"2GiB\" }}]"
                ),
            ),
            differs: vec![],
        },
    ];
    let problems: Vec<String> = cases.iter().flat_map(|c| compare(&uri, c)).collect();
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
    // Nothing was made: neither tool defined a VM.
    let vms = virsh(&uri, &["list", "--all", "--name"]);
    assert!(!vms.contains(&env.prefix), "{vms}");
}

// ------------------------------------------------ the defaults on the test driver

/// The facts of the final definition of a dry run on the embedded driver.
fn dry_facts(spec: &str) -> Facts {
    let docs = virtscript(
        "test:///default",
        &format!("#{{ virt_type: \"qemu\", dry_run: true, {spec} }}"),
    );
    facts(docs.last().expect("a document"))
}

fn fact<'a>(f: &'a Facts, key: &str) -> &'a str {
    f.get(key).map(String::as_str).unwrap_or("")
}

const ISO: &str = "cdrom: \"/var/lib/libvirt/isos/a.iso\"";
const PORTS14: &str = "root=1 ports=14";
const IMPORT: &str = "import: true, disks: [#{ pool: \"default-pool\", size: \"1G\" }]";

/// With `os: "debian11"` the VM gets what virt-install gives it, and libvirt
/// (the test driver) keeps it in the definition.
#[test]
fn an_os_with_virtio_gets_virt_installs_devices() {
    let run = Script::new(&format!(
        "let vm = HOST.define_vm(#{{ name: \"d11\", virt_type: \"qemu\", os: \"debian11\", {ISO} }});\nprint(vm.inactive_xml);"
    ))
    .run();
    run.ok();
    let f = facts(&documents(&run.stdout)[0]);
    let want = [
        ("machine", "q35"),
        ("graphics", "spice"),
        ("video", "virtio"),
        ("sound", "ich9"),
        ("input", "tablet,usb"),
        ("redirdev", "usb,spicevmc usb,spicevmc"),
        ("usb_controllers", "qemu-xhci,15"),
        ("rng", "virtio:random:/dev/urandom"),
        ("memballoon", "virtio"),
        ("features", "acpi,apic,vmport=off"),
        ("clock", "utc rtc,catchup,- pit,delay,- hpet,-,no"),
        ("pm", "suspend-to-mem=no,suspend-to-disk=no"),
        ("pci", PORTS14),
        ("tpm", ""),
    ];
    for (key, value) in want {
        assert_eq!(fact(&f, key), value, "{key} in {}", run.stdout);
    }
}

/// With UEFI a TPM (swtpm) as virt-install adds it; `tpm: "none"` refuses it.
#[test]
fn uefi_gets_a_tpm_unless_told_none() {
    let with = dry_facts(&format!("name: \"e\", os: \"debian11\", uefi: true, {ISO}"));
    assert_eq!(fact(&with, "tpm"), "tpm-crb:emulator");
    assert_eq!(fact(&with, "firmware"), "efi");
    let none = dry_facts(&format!(
        "name: \"e\", os: \"debian11\", uefi: true, tpm: \"none\", {ISO}"
    ));
    assert_eq!(fact(&none, "tpm"), "");
    let bios = dry_facts(&format!("name: \"e\", os: \"debian11\", {ISO}"));
    assert_eq!(fact(&bios, "tpm"), "");
}

/// `"none"` refuses each default; a USB controller `"none"` refuses the USB
/// devices (tablet, SPICE redirection) too.
#[test]
fn none_refuses_each_default() {
    let f = dry_facts(&format!(
        "name: \"n\", os: \"debian11\", {ISO}, rng: \"none\", sound: \"none\", memballoon: \"none\", \
         controllers: [#{{ type: \"usb\", model: \"none\" }}]"
    ));
    assert_eq!(fact(&f, "rng"), "");
    assert_eq!(fact(&f, "sound"), "");
    assert_eq!(fact(&f, "memballoon"), "none");
    assert_eq!(fact(&f, "usb_controllers"), "none,-");
    assert_eq!(fact(&f, "input"), "");
    assert_eq!(fact(&f, "redirdev"), "");
    // What "none" does not touch stays.
    assert_eq!(fact(&f, "video"), "virtio");
    // A script that reads the words back sees them refused, not misread.
    let bad = Script::new("HOST.create_vm(#{ name: \"b\", rng: \"nope\", dry_run: true });").run();
    bad.code(1).stderr_has("rng").stderr_has("nope");
}

/// Keys the spec gives win over the defaults.
#[test]
fn given_devices_win_over_the_defaults() {
    let f = dry_facts(&format!(
        "name: \"g\", os: \"debian11\", {ISO}, sound: \"ac97\", video: \"vga\", rng: \"/dev/random\", \
         graphics: \"vnc\", controllers: [#{{ type: \"usb\", model: \"nec-xhci\" }}, #{{ type: \"pci\", model: \"pcie-root\" }}]"
    ));
    assert_eq!(fact(&f, "sound"), "ac97");
    assert_eq!(fact(&f, "video"), "vga");
    assert_eq!(fact(&f, "rng"), "virtio:random:/dev/random");
    assert_eq!(fact(&f, "graphics"), "vnc");
    assert_eq!(fact(&f, "usb_controllers"), "nec-xhci,-");
    assert_eq!(fact(&f, "pci"), "root=1 ports=0");
    // VNC: no SPICE devices.
    assert_eq!(fact(&f, "redirdev"), "");
    assert_eq!(fact(&f, "features"), "acpi,apic");
    assert_eq!(fact(&f, "input"), "tablet,usb");
}

/// Without `os` only what virt-install decides by platform: the video by
/// display and firmware, the ICH9 USB 2 set, the x86 clock and pm; no RNG,
/// no explicit balloon, and no display but for an ISO install.
#[test]
fn without_os_the_platform_defaults_only() {
    let iso = dry_facts(&format!("name: \"p\", {ISO}"));
    assert_eq!(fact(&iso, "machine"), "pc");
    assert_eq!(fact(&iso, "video"), "qxl");
    assert_eq!(fact(&iso, "sound"), "ich6");
    assert_eq!(
        fact(&iso, "usb_controllers"),
        "ich9-ehci1,- ich9-uhci1,- ich9-uhci2,- ich9-uhci3,-"
    );
    assert_eq!(fact(&iso, "rng"), "");
    assert_eq!(fact(&iso, "memballoon"), "");
    assert_eq!(fact(&iso, "pci"), "root=0 ports=0");
    // Without os, libvirt's own pm and clock.
    assert_eq!(fact(&iso, "pm"), "");
    let vnc = dry_facts(&format!("name: \"v\", {IMPORT}, graphics: \"vnc\""));
    assert_eq!(fact(&vnc, "video"), "vga");
    let efi = dry_facts(&format!(
        "name: \"v\", {IMPORT}, graphics: \"vnc\", uefi: true"
    ));
    assert_eq!(fact(&efi, "video"), "bochs");
    let headless = dry_facts(&format!("name: \"h\", {IMPORT}"));
    assert_eq!(
        (
            fact(&headless, "graphics"),
            fact(&headless, "video"),
            fact(&headless, "input")
        ),
        ("", "", "")
    );
    assert_eq!(fact(&headless, "usb_controllers"), "", "no display, no USB");
    // Spare PCIe ports come with os (libvirt adds the ports a q35 VM needs).
    let q35 = dry_facts(&format!("name: \"q\", {IMPORT}, machine: \"q35\""));
    assert_eq!(fact(&q35, "pci"), "root=0 ports=0");
    let q35_os = dry_facts(&format!(
        "name: \"q\", {IMPORT}, machine: \"q35\", os: \"debian11\""
    ));
    assert_eq!(fact(&q35_os, "pci"), PORTS14);
}

/// A Windows guest keeps its clock in local time; ARM `virt` gets a USB
/// keyboard beside the tablet and USB 3.
#[test]
fn the_clock_and_inputs_follow_the_os_and_platform() {
    let win = dry_facts(&format!("name: \"w\", os: \"win10\", {ISO}"));
    assert!(fact(&win, "clock").starts_with("localtime "), "{win:?}");
    let arm = dry_facts(&format!(
        "name: \"a\", arch: \"aarch64\", {IMPORT}, graphics: \"vnc\""
    ));
    assert_eq!(fact(&arm, "input"), "tablet,usb keyboard,usb");
    assert_eq!(fact(&arm, "video"), "virtio");
    assert_eq!(fact(&arm, "usb_controllers"), "qemu-xhci,15");
    assert_eq!(fact(&arm, "clock"), "utc ");
    assert_eq!(fact(&arm, "pm"), "");
}
