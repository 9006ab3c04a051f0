//! The device keys for the `<features>` block.
use super::*;

// ---------------------------------------------------------------- features

/// The Hyper-V enlightenments libvirt knows.
pub const HYPERV_FLAGS: &[&str] = &[
    "relaxed",
    "vapic",
    "spinlocks",
    "vpindex",
    "runtime",
    "synic",
    "stimer",
    "reset",
    "vendor_id",
    "frequencies",
    "reenlightenment",
    "tlbflush",
    "ipi",
    "evmcs",
    "avic",
    "emsr_bitmap",
    "xmm_input",
];

/// `features`: `#{ acpi, apic, pae, smm, vmport, kvm: #{ hidden }, hyperv:
/// #{ relaxed, vapic, spinlocks, ... } }`, each `true`/`false`; a spec's
/// features start from virt-install's (`acpi`, `apic`) and the keys given
/// change them. In `hyperv`, `spinlocks` may be the retry count (at least
/// 4095) and `vendor_id` a string of up to 12 characters; `mode` is
/// `"custom"` or `"passthrough"`. Other features in the definition stay.
pub fn features(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    let Some(m) = f.map("features")? else {
        return Ok(());
    };
    let g = Fields::new(f.name("features"), &m);
    let mut x: Features = d.features.clone();
    for (name, slot) in [("acpi", &mut x.acpi), ("apic", &mut x.apic), ("pae", &mut x.pae)] {
        if let Some(on) = g.boolean(name)? {
            *slot = on;
        }
    }
    if let Some(on) = g.boolean("smm")? {
        x.smm = Some(on);
    }
    if let Some(on) = g.boolean("vmport")? {
        x.vmport = Some(on);
    }
    if let Some(kvm) = g.map("kvm")? {
        let k = Fields::new(g.name("kvm"), &kvm);
        if let Some(hidden) = k.boolean("hidden")? {
            x.kvm_hidden = Some(hidden);
        }
        k.finish()?;
    }
    if let Some(hv) = g.map("hyperv")? {
        x.hyperv = Some(hyperv(&g.name("hyperv"), &hv, x.hyperv.take())?);
    }
    g.finish()?;
    d.features = x;
    Ok(())
}

fn hyperv(field: &str, m: &Map, old: Option<Hyperv>) -> Result<Hyperv, ScriptError> {
    let h = Fields::new(field, m);
    let mut hv = old.unwrap_or_default();
    if let Some(mode) = named(&h, "mode", "Hyper-V mode", &["custom", "passthrough"])? {
        hv.mode = Some(mode);
    }
    for name in HYPERV_FLAGS {
        let Some(v) = h.raw(name) else { continue };
        let (on, value) = if let Ok(b) = v.as_bool() {
            (b, None)
        } else if *name == "spinlocks" && v.is_int() {
            let n = v.as_int().unwrap_or(0);
            if !(4095..=i64::from(u32::MAX)).contains(&n) {
                return Err(ScriptError::invalid(
                    &h.name(name),
                    n,
                    "the spinlock retry count must be at least 4095",
                ));
            }
            (true, Some(n.to_string()))
        } else if *name == "vendor_id" && v.is_string() {
            let s = h.string(name)?.unwrap_or_default();
            if s.is_empty() || s.len() > 12 || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ') {
                return Err(ScriptError::invalid(
                    &h.name(name),
                    &s,
                    "a vendor id is 1 to 12 letters, digits or spaces",
                ));
            }
            (true, Some(s))
        } else {
            let want = match *name {
                "spinlocks" => "true, false or a retry count",
                "vendor_id" => "true, false or a vendor string",
                _ => "true or false",
            };
            return Err(h.wrong(name, v, want));
        };
        let existing = hv.flags.iter_mut().find(|f| f.name == *name);
        let had_value = existing.as_ref().is_some_and(|f| f.value.is_some());
        if *name == "spinlocks" && on && value.is_none() && !had_value {
            return Err(ScriptError::invalid(
                &h.name(name),
                "true",
                "give the retry count (at least 4095), like spinlocks: 8191",
            ));
        }
        match existing {
            Some(f) => {
                f.on = on;
                if value.is_some() {
                    f.value = value;
                }
            }
            None => hv.flags.push(HypervFlag {
                name: (*name).to_owned(),
                on,
                value,
            }),
        }
    }
    h.finish()?;
    Ok(hv)
}

pub fn features_shown(d: &Domain) -> Dynamic {
    let x = &d.features;
    let hyperv = match &x.hyperv {
        None => Dynamic::UNIT,
        Some(h) => {
            let mut m = Map::new();
            if let Some(mode) = &h.mode {
                m.insert("mode".into(), mode.clone().into());
            }
            for flag in &h.flags {
                let v: Dynamic = match (&flag.value, flag.on) {
                    (Some(v), true) if flag.name == "spinlocks" => {
                        v.parse::<i64>().map(Dynamic::from).unwrap_or_else(|_| true.into())
                    }
                    (Some(v), true) if flag.name == "vendor_id" => v.clone().into(),
                    (_, on) => on.into(),
                };
                m.insert(flag.name.clone().into(), v);
            }
            m.into()
        }
    };
    map_of(vec![
        ("acpi", x.acpi.into()),
        ("apic", x.apic.into()),
        ("pae", x.pae.into()),
        ("smm", opt_bool(x.smm)),
        ("vmport", opt_bool(x.vmport)),
        (
            "kvm",
            match x.kvm_hidden {
                Some(h) => map_of(vec![("hidden", h.into())]),
                None => Dynamic::UNIT,
            },
        ),
        ("hyperv", hyperv),
    ])
}
