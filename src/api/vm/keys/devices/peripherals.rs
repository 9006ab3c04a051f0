//! The device keys for tpm, rng, watchdog and memballoon.
use super::*;

// ---------------------------------------------------------------- tpm, rng, watchdog, balloon

pub const TPM_MODELS: &[&str] = &["tpm-crb", "tpm-tis", "tpm-spapr", "spapr-tpm-proxy"];

/// `tpm`: `"emulator"` (a TPM 2.0 emulated by swtpm: tpm-crb on x86,
/// tpm-spapr on ppc64, tpm-tis elsewhere) or `#{ model, version }`
/// (`"2.0"` or `"1.2"`); `"none"`: no TPM (and none by default with UEFI).
pub fn tpm(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    let key = f.name("tpm");
    let (model, version) = match form(f, "tpm")? {
        None => {
            d.tpms.clear();
            return Ok(());
        }
        Some(Form::Short(s)) if s == "none" => {
            d.tpms.clear();
            return Ok(());
        }
        Some(Form::Short(s)) => {
            known_name(&key, &s, "TPM backend", &["emulator", "none"])?;
            (None, None)
        }
        Some(Form::Full(m)) => {
            let g = Fields::new(key.clone(), &m);
            let model = named(&g, "model", "TPM model", TPM_MODELS)?;
            let version = match g.raw("version") {
                Some(v) if v.is_float() => Some(format!("{:.1}", v.as_float().unwrap_or(0.0))),
                Some(_) => g.string("version")?,
                None => None,
            };
            let backend = g.string("type")?;
            g.finish()?;
            if let Some(b) = &backend {
                known_name(&g.name("type"), b, "TPM backend", &["emulator"])?;
            }
            if let Some(v) = &version {
                known_name(&g.name("version"), v, "TPM version", &["2.0", "1.2"])?;
            }
            if model.as_deref() == Some("spapr-tpm-proxy") {
                return Err(ScriptError::invalid(
                    &g.name("model"),
                    "spapr-tpm-proxy",
                    "spapr-tpm-proxy passes a host TPM through; an emulated TPM on ppc64 is tpm-spapr",
                ));
            }
            if model.as_deref() == Some("tpm-crb") && version.as_deref() == Some("1.2") {
                return Err(ScriptError::invalid(
                    &g.name("version"),
                    "1.2",
                    "tpm-crb is a TPM 2.0 interface; use tpm-tis for 1.2",
                ));
            }
            (model, version)
        }
    };
    let model = model.or_else(|| {
        Some(
            match d.os.arch.as_deref() {
                None | Some("x86_64" | "i686") => "tpm-crb",
                Some(a) if a.starts_with("ppc64") => "tpm-spapr",
                Some(_) => "tpm-tis",
            }
            .to_owned(),
        )
    });
    let tpm = Tpm {
        model,
        backend: "emulator".into(),
        version: Some(version.unwrap_or_else(|| "2.0".into())),
    };
    d.tpms = vec![tpm];
    Ok(())
}

pub fn tpm_shown(d: &Domain) -> Dynamic {
    let Some(t) = d.tpms.first() else {
        return Dynamic::UNIT;
    };
    map_of(vec![
        ("model", opt_str(&t.model)),
        ("version", opt_str(&t.version)),
        ("type", t.backend.clone().into()),
    ])
}

const RNG_SOURCES: &[&str] = &["/dev/urandom", "/dev/random", "/dev/hwrng", "builtin"];

/// `rng`: a virtio RNG fed from `"/dev/urandom"`, `"/dev/random"`,
/// `"/dev/hwrng"` or QEMU's own `"builtin"`, or `#{ model, backend, rate }`
/// (`rate`: bytes per second, or `#{ bytes, period }` with the period in ms);
/// `"none"`: no RNG (and none by default).
pub fn rng(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    let key = f.name("rng");
    let rng = match form(f, "rng")? {
        None => None,
        Some(Form::Short(s)) if s == "none" => None,
        Some(Form::Short(s)) => {
            let mut known = RNG_SOURCES.to_vec();
            known.push("none");
            known_name(&key, &s, "random number source", &known)?;
            Some(rng_of("virtio".into(), s, None))
        }
        Some(Form::Full(m)) => {
            let g = Fields::new(key.clone(), &m);
            let model = named(
                &g,
                "model",
                "RNG model",
                &["virtio", "virtio-transitional", "virtio-non-transitional"],
            )?;
            let backend = named(&g, "backend", "random number source", RNG_SOURCES)?;
            let rate = match g.raw("rate") {
                None => None,
                Some(v) if v.is_int() => Some((g.positive("rate", i64::from(u32::MAX))? .unwrap_or(1) as u64, 1000)),
                Some(_) => {
                    let rm = g.map("rate")?.unwrap_or_default();
                    let r = Fields::new(g.name("rate"), &rm);
                    let bytes = r.positive("bytes", i64::from(u32::MAX))?;
                    let period = r.positive("period", i64::from(u32::MAX))?;
                    r.finish()?;
                    let bytes = need(&r, "bytes", bytes, "the bytes per period")?;
                    Some((u64::from(bytes), u64::from(period.unwrap_or(1000))))
                }
            };
            g.finish()?;
            Some(rng_of(
                model.unwrap_or_else(|| "virtio".into()),
                backend.unwrap_or_else(|| "/dev/urandom".into()),
                rate,
            ))
        }
    };
    d.rngs = rng.into_iter().collect();
    Ok(())
}

fn rng_of(model: String, source: String, rate: Option<(u64, u64)>) -> Rng {
    let builtin = source == "builtin";
    Rng {
        model,
        backend: if builtin { "builtin" } else { "random" }.into(),
        path: (!builtin).then_some(source),
        rate_bytes: rate.map(|r| r.0),
        rate_period: rate.map(|r| r.1),
    }
}

pub fn rng_shown(d: &Domain) -> Dynamic {
    let Some(r) = d.rngs.first() else {
        return Dynamic::UNIT;
    };
    let backend = r.path.clone().unwrap_or_else(|| r.backend.clone());
    let rate = match r.rate_bytes {
        Some(b) => map_of(vec![
            ("bytes", Dynamic::from(b as i64)),
            ("period", opt_num(r.rate_period.map(|p| p as i64))),
        ]),
        None => Dynamic::UNIT,
    };
    map_of(vec![
        ("model", r.model.clone().into()),
        ("backend", backend.into()),
        ("rate", rate),
    ])
}

pub const WATCHDOG_MODELS: &[&str] = &["i6300esb", "ib700", "diag288", "itco"];
pub const WATCHDOG_ACTIONS: &[&str] = &[
    "reset",
    "shutdown",
    "poweroff",
    "pause",
    "none",
    "dump",
    "inject-nmi",
];

/// `watchdog`: a model (`"i6300esb"`, `"ib700"`, `"diag288"`, `"itco"`) or
/// `#{ model, action }` (`reset`, the default, `shutdown`, `poweroff`,
/// `pause`, `none`, `dump`, `inject-nmi`).
pub fn watchdog(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    let key = f.name("watchdog");
    let w = match form(f, "watchdog")? {
        None => None,
        Some(Form::Short(s)) => {
            known_name(&key, &s, "watchdog model", WATCHDOG_MODELS)?;
            Some(Watchdog {
                model: s,
                action: None,
            })
        }
        Some(Form::Full(m)) => {
            let g = Fields::new(key.clone(), &m);
            let model = named(&g, "model", "watchdog model", WATCHDOG_MODELS)?;
            let action = named(&g, "action", "watchdog action", WATCHDOG_ACTIONS)?;
            g.finish()?;
            let model = need(&g, "model", model, "the watchdog model")?;
            Some(Watchdog { model, action })
        }
    };
    d.watchdogs = w.into_iter().collect();
    Ok(())
}

pub fn watchdog_shown(d: &Domain) -> Dynamic {
    let Some(w) = d.watchdogs.first() else {
        return Dynamic::UNIT;
    };
    map_of(vec![
        ("model", w.model.clone().into()),
        ("action", opt_str(&w.action)),
    ])
}

const BALLOON_MODELS: &[&str] = &[
    "virtio",
    "none",
    "virtio-transitional",
    "virtio-non-transitional",
    "xen",
];

/// `memballoon`: `"virtio"` (libvirt's default) or `"none"` (no balloon;
/// `current_memory` then cannot change live); or `#{ model }`.
pub fn memballoon(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    let key = f.name("memballoon");
    let model = match form(f, "memballoon")? {
        None => None,
        Some(Form::Short(s)) => Some(s),
        Some(Form::Full(m)) => {
            let g = Fields::new(key.clone(), &m);
            let model = g.string("model")?;
            g.finish()?;
            Some(need(&g, "model", model, "the balloon model")?)
        }
    };
    if let Some(m) = &model {
        known_name(&key, m, "memory balloon model", BALLOON_MODELS)?;
    }
    d.memballoon = model.map(|model| Memballoon { model });
    Ok(())
}

pub fn memballoon_shown(d: &Domain) -> Dynamic {
    d.memballoon
        .as_ref()
        .map(|m| Dynamic::from(m.model.clone()))
        .unwrap_or(Dynamic::UNIT)
}
