//! Property tests (issue 19): generated spec maps with wrong types,
//! out-of-range numbers and odd strings never panic a constructor; each call
//! succeeds or fails with an error map that names the `field`. In process,
//! on this test binary's own embedded test driver.
use proptest::prelude::*;
use rhai::{Dynamic, EvalAltResult, Map};

/// Odd strings: empty, blanks, control characters, XML metacharacters,
/// non-ASCII, paths, CIDR-looking text, and very long.
fn odd_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(" ".to_owned()),
        Just("\0".to_owned()),
        Just("a\rb\nc\t".to_owned()),
        Just("'/><devices>&amp;".to_owned()),
        Just("\"<x>\"".to_owned()),
        Just("é漢字🦀".to_owned()),
        Just("../../etc".to_owned()),
        Just("-rf".to_owned()),
        Just("10.0.0.0/33".to_owned()),
        Just("fd00::1/128".to_owned()),
        Just("192.168.77.1/24".to_owned()),
        Just("52:54:00:00:00:01".to_owned()),
        Just("01:00:5e:00:00:01".to_owned()),
        Just("8E".to_owned()),
        Just("0.0000001K".to_owned()),
        Just("1G".to_owned()),
        Just("nat".to_owned()),
        Just("x".repeat(5000)),
        "[a-z]{1,12}",
        any::<String>(),
    ]
}

fn odd_number() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(i64::MIN),
        Just(-1),
        Just(0),
        Just(1),
        Just(65536),
        Just(u32::MAX as i64 + 1),
        Just(i64::MAX),
        any::<i64>(),
    ]
}

/// Any script value: the wrong type for most keys, nested a little.
fn value() -> impl Strategy<Value = Dynamic> {
    let leaf = prop_oneof![
        1 => Just(Dynamic::UNIT),
        1 => any::<bool>().prop_map(Dynamic::from),
        1 => odd_number().prop_map(Dynamic::from),
        1 => prop_oneof![Just(f64::NAN), Just(-0.5), Just(1e300), any::<f64>()].prop_map(Dynamic::from),
        4 => odd_string().prop_map(Dynamic::from),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Dynamic::from_array),
            prop::collection::vec(("[a-z_]{1,8}", inner), 0..3).prop_map(|kv| {
                let mut m = Map::new();
                for (k, v) in kv {
                    m.insert(k.into(), v);
                }
                Dynamic::from_map(m)
            }),
        ]
    })
}

/// A spec: some of `keys` (plus, sometimes, an unknown one) with any values.
fn spec(keys: &'static [&'static str]) -> impl Strategy<Value = Map> {
    prop::collection::vec(
        (
            prop_oneof![9 => prop::sample::select(keys).prop_map(str::to_owned), 1 => "[a-z]{1,6}"],
            value(),
        ),
        0..6,
    )
    .prop_map(|entries| {
        let mut m = Map::new();
        for (k, v) in entries {
            m.insert(k.into(), v);
        }
        m
    })
}

/// A spec that works (`base`), with one to three of `keys` replaced by any
/// value: the generated input reaches past the first check.
fn mutated(base: fn(u8) -> Map, keys: &'static [&'static str]) -> impl Strategy<Value = Map> {
    (
        any::<u8>(),
        prop::collection::vec((prop::sample::select(keys), value()), 1..4),
    )
        .prop_map(move |(n, edits)| {
            let mut m = base(n);
            for (k, v) in edits {
                m.insert(k.into(), v);
            }
            m
        })
}

fn map(entries: &[(&str, Dynamic)]) -> Map {
    entries
        .iter()
        .map(|(k, v)| ((*k).into(), v.clone()))
        .collect()
}

fn network_base(n: u8) -> Map {
    map(&[
        ("name", format!("p{n}").into()),
        ("forward", "nat".into()),
        ("ip", format!("10.{n}.0.1/24").into()),
        (
            "dhcp",
            Dynamic::from_array(vec![
                format!("10.{n}.0.2").into(),
                format!("10.{n}.0.9").into(),
            ]),
        ),
    ])
}

fn vm_base(n: u8) -> Map {
    let disk = map(&[("pool", "default-pool".into()), ("size", "1G".into())]);
    map(&[
        ("name", format!("p{n}").into()),
        ("import", true.into()),
        ("start", false.into()),
        ("disks", Dynamic::from_array(vec![Dynamic::from_map(disk)])),
    ])
}

fn volume_base(n: u8) -> Map {
    map(&[
        ("name", format!("p{n}.qcow2").into()),
        ("capacity", "1G".into()),
        ("format", "qcow2".into()),
    ])
}

/// The network spec's keys, from its type.
fn network_keys() -> &'static [&'static str] {
    virtscript::api::args::keys_of::<virtscript::api::network::spec::NetworkSpec>()
}
const VM_KEYS: &[&str] = &[
    "name",
    "memory",
    "current_memory",
    "vcpus",
    "max_vcpus",
    "cpu",
    "virt_type",
    "arch",
    "machine",
    "uefi",
    "disks",
    "cdrom",
    "pxe",
    "import",
    "kernel",
    "initrd",
    "cmdline",
    "networks",
    "graphics",
    "autostart",
    "start",
    "description",
    "title",
    "uuid",
    "guest_agent",
    "metadata",
    "video",
    "sound",
    "console",
    "controllers",
    "filesystems",
    "tpm",
    "rng",
    "watchdog",
    "memballoon",
    "features",
];
const VOLUME_KEYS: &[&str] = &["name", "capacity", "format", "allocation", "backing"];

struct Runner {
    engine: rhai::Engine,
}

impl Runner {
    fn new() -> Runner {
        let sources = virtscript::engine::SourceMap::default();
        let mut engine = virtscript::engine::build(&Default::default(), &sources);
        let host = virtscript::api::Host::open("test:///default").expect("test driver");
        virtscript::engine::bind_globals(&mut engine, Some(host), &[]);
        Runner { engine }
    }

    /// Call `call` (a script expression of `spec`) and check the outcome.
    fn check(&self, call: &str, spec: Map) -> Result<(), TestCaseError> {
        let mut scope = virtscript::engine::compile_scope();
        scope.push("spec", spec.clone());
        match self.engine.eval_with_scope::<Dynamic>(&mut scope, call) {
            Ok(_) => Ok(()),
            Err(err) => {
                let leaf = innermost(&err);
                let field = match leaf {
                    EvalAltResult::ErrorRuntime(v, _) => v
                        .read_lock::<Map>()
                        .and_then(|m| m.get("field").map(|f| f.to_string())),
                    _ => None,
                };
                prop_assert!(
                    field.is_some(),
                    "{call} with {:?}: an error without a field: {leaf}",
                    Dynamic::from_map(spec)
                );
                Ok(())
            }
        }
    }
}

fn innermost(err: &EvalAltResult) -> &EvalAltResult {
    match err {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
        | EvalAltResult::ErrorInModule(_, inner, _) => innermost(inner),
        other => other,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn network_constructors_take_any_spec(spec in spec(network_keys())) {
        let r = Runner::new();
        for call in ["HOST.define_network(spec)", "HOST.create_network(spec)", "HOST.ensure_network(spec)"] {
            r.check(call, spec.clone())?;
        }
    }

    #[test]
    fn vm_constructors_take_any_spec(spec in spec(VM_KEYS)) {
        let r = Runner::new();
        for call in ["HOST.define_vm(spec)", "HOST.create_vm(spec)"] {
            r.check(call, spec.clone())?;
        }
    }

    #[test]
    fn network_constructors_take_a_working_spec_with_any_edit(spec in mutated(network_base, network_keys())) {
        let r = Runner::new();
        for call in ["HOST.define_network(spec)", "HOST.ensure_network(spec)"] {
            r.check(call, spec.clone())?;
        }
    }

    #[test]
    fn vm_constructors_take_a_working_spec_with_any_edit(spec in mutated(vm_base, VM_KEYS)) {
        let r = Runner::new();
        r.check("HOST.create_vm(spec)", spec)?;
    }

    #[test]
    fn volume_constructor_takes_a_working_spec_with_any_edit(spec in mutated(volume_base, VOLUME_KEYS)) {
        let r = Runner::new();
        r.check("HOST.pool(\"default-pool\").create_volume(spec)", spec)?;
    }

    #[test]
    fn volume_constructor_takes_any_spec(spec in spec(VOLUME_KEYS)) {
        let r = Runner::new();
        r.check("HOST.pool(\"default-pool\").create_volume(spec)", spec)?;
    }

    #[test]
    fn dhcp_and_dns_updates_take_any_record(record in spec(&["mac", "id", "name", "ip", "lease", "hostnames", "service", "protocol", "port", "domain", "target"])) {
        let r = Runner::new();
        for call in ["HOST.network(\"default\").add_dhcp_host(spec)", "HOST.network(\"default\").add_dns_host(spec)", "HOST.network(\"default\").add_dns_srv(spec)"] {
            r.check(call, record.clone())?;
        }
    }
}

/// Every key of a working spec, alone, set to each odd value: the exhaustive
/// half of the properties above (a random walk can miss one key's check).
fn each_key(base: fn(u8) -> Map, keys: &[&str], call: &str) {
    let odd: Vec<Dynamic> = [
        "",
        " ",
        "\0",
        "a\rb",
        "'/><devices>",
        "é漢字",
        "../x",
        "-rf",
        "10.0.0.0/33",
        "fd00::1/128",
        "01:00:5e:00:00:01",
        "8E",
        "0.0000001K",
        "x y",
        "nope",
    ]
    .iter()
    .map(|s| Dynamic::from(s.to_string()))
    .chain([
        Dynamic::UNIT,
        Dynamic::from(true),
        Dynamic::from(-1_i64),
        Dynamic::from(i64::MAX),
        Dynamic::from(u32::MAX as i64 + 1),
        Dynamic::from(1.5_f64),
        Dynamic::from_array(vec![Dynamic::from(1_i64)]),
        Dynamic::from_map(Map::new()),
    ])
    .collect();
    let r = Runner::new();
    let mut n = 0u8;
    for key in keys {
        for v in &odd {
            n = n.wrapping_add(1);
            let mut spec = base(n);
            spec.insert((*key).into(), v.clone());
            if let Err(e) = r.check(call, spec) {
                panic!("{e}");
            }
        }
    }
}

#[test]
fn every_network_key_takes_every_odd_value() {
    each_key(network_base, network_keys(), "HOST.define_network(spec)");
}

#[test]
fn every_vm_key_takes_every_odd_value() {
    each_key(vm_base, VM_KEYS, "HOST.create_vm(spec)");
}

#[test]
fn every_volume_key_takes_every_odd_value() {
    each_key(
        volume_base,
        VOLUME_KEYS,
        "HOST.pool(\"default-pool\").create_volume(spec)",
    );
}
