//! The device keys for graphics, video, sound and console.
use super::*;

// ---------------------------------------------------------------- graphics

pub const GRAPHICS_TYPES: &[&str] = &["vnc", "spice"];

/// The spice agent's channel (copy and paste, resizing), as virt-install adds it.
pub fn spice_vdagent() -> CharDev {
    CharDev {
        kind: "channel".into(),
        char_type: "spicevmc".into(),
        target_type: Some("virtio".into()),
        target_name: Some("com.redhat.spice.0".into()),
        port: None,
    }
}

/// `graphics`: `"vnc"`, `"spice"`, `"none"`, or `#{ type, listen, port,
/// password }`; `listen` defaults to 127.0.0.1, no `port` is a free one.
/// The password is never shown (a map without one keeps the one set;
/// `password: ""` removes it). Spice brings the vdagent channel.
pub fn graphics(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    let old_passwd = d.graphics.first().and_then(|g| g.passwd.clone());
    let key = f.name("graphics");
    let g = match form(f, "graphics")? {
        None => None,
        Some(Form::Short(s)) if s == "none" => None,
        Some(Form::Short(s)) => {
            known_name(&key, &s, "graphics type", GRAPHICS_TYPES)?;
            Some(Graphics {
                graphics_type: s,
                autoport: Some(true),
                port: None,
                listen: Some("127.0.0.1".into()),
                passwd: old_passwd,
            })
        }
        Some(Form::Full(m)) => Some(graphics_map(&key, &m, old_passwd)?),
    };
    d.graphics = g.into_iter().collect();
    let spice = d.graphics.iter().any(|g| g.graphics_type == "spice");
    let agent = spice_vdagent();
    let has_agent = d.channels.iter().any(|c| c.char_type == "spicevmc");
    if spice && !has_agent {
        d.channels.push(agent);
    } else if !spice {
        d.channels.retain(|c| c.char_type != "spicevmc");
    }
    Ok(())
}

fn graphics_map(key: &str, m: &Map, old_passwd: Option<String>) -> Result<Graphics, ScriptError> {
    let g = Fields::new(key, m);
    // A misspelt `password` key must not print the password with the error.
    const KEYS: &[&str] = &["type", "listen", "port", "password"];
    if let Some(k) = m.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(ScriptError::invalid(
            &g.name(k),
            "(hidden)",
            crate::runtime::suggest::unknown_key("", k, KEYS),
        ));
    }
    let kind = named(&g, "type", "graphics type", GRAPHICS_TYPES)?;
    let listen = g.string("listen")?;
    let port = g.int("port")?;
    // Read by hand: an error must not show the password.
    let password = g.raw("password");
    g.finish()?;
    let kind = need(&g, "type", kind, "the graphics type (vnc or spice)")?;
    if let Some(l) = &listen {
        if l.parse::<std::net::IpAddr>().is_err() {
            return Err(ScriptError::invalid(
                &g.name("listen"),
                l,
                "must be an IP address to listen on (like 127.0.0.1, 0.0.0.0 or ::1)",
            ));
        }
    }
    let low = if kind == "vnc" { 5900 } else { 1 };
    let port = match port {
        None | Some(-1) => None,
        Some(p) if (low..=65535).contains(&p) => Some(p as i32),
        Some(p) => {
            return Err(ScriptError::invalid(
                &g.name("port"),
                p,
                format!("must be between {low} and 65535 (or -1 for a free port)"),
            ))
        }
    };
    let passwd = match password {
        None => old_passwd,
        Some(v) if !v.is_string() => {
            return Err(ScriptError::invalid(
                &g.name("password"),
                "(hidden)",
                format!("must be a string, not {}", v.type_name()),
            ))
        }
        Some(v) => {
            let p = v.to_string();
            if p.chars().any(char::is_control) {
                return Err(ScriptError::invalid(
                    &g.name("password"),
                    "(hidden)",
                    "must not contain control characters",
                ));
            }
            if kind == "vnc" && p.chars().count() > 8 {
                return Err(ScriptError::invalid(
                    &g.name("password"),
                    "(hidden)",
                    "a VNC password has at most 8 characters (the protocol uses only 8)",
                ));
            }
            (!p.is_empty()).then_some(p)
        }
    };
    Ok(Graphics {
        graphics_type: kind,
        autoport: Some(port.is_none()),
        port,
        listen: Some(listen.unwrap_or_else(|| "127.0.0.1".into())),
        passwd,
    })
}

/// `#{ type, listen, port }` (no password), or `()`.
pub fn graphics_shown(d: &Domain) -> Dynamic {
    let Some(g) = d.graphics.first() else {
        return Dynamic::UNIT;
    };
    let port = if g.autoport == Some(true) {
        None
    } else {
        g.port.map(i64::from)
    };
    map_of(vec![
        ("type", g.graphics_type.clone().into()),
        ("listen", opt_str(&g.listen)),
        ("port", opt_num(port)),
    ])
}

// ---------------------------------------------------------------- video, sound

pub const VIDEO_MODELS: &[&str] = &[
    "virtio",
    "qxl",
    "vga",
    "cirrus",
    "bochs",
    "ramfb",
    "none",
    "vmvga",
    "xen",
    "vbox",
    "gop",
];

/// `video`: a model (`"virtio"`, `"qxl"`, `"vga"`, `"none"`...) or
/// `#{ model, vram, heads, accel3d }` (`vram` a size, numbers in MiB).
pub fn video(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    let key = f.name("video");
    let v = match form(f, "video")? {
        None => None,
        Some(Form::Short(s)) => {
            known_name(&key, &s, "video model", VIDEO_MODELS)?;
            Some(Video {
                model: s,
                ..Video::default()
            })
        }
        Some(Form::Full(m)) => {
            let g = Fields::new(key.clone(), &m);
            let model = named(&g, "model", "video model", VIDEO_MODELS)?;
            let vram = g.size("vram", true)?;
            let heads = g.positive("heads", 16)?;
            let accel3d = g.boolean("accel3d")?;
            g.finish()?;
            let model = need(&g, "model", model, "the video model")?;
            if accel3d == Some(true) && !matches!(model.as_str(), "virtio" | "vbox") {
                return Err(ScriptError::invalid(
                    &g.name("accel3d"),
                    "true",
                    format!("3D acceleration needs the virtio model, not {model}"),
                ));
            }
            Some(Video {
                model,
                vram_kib: vram.map(|b| b / 1024),
                heads,
                accel3d,
            })
        }
    };
    d.videos = v.into_iter().collect();
    Ok(())
}

/// `#{ model, vram (MiB), heads, accel3d }` of the first video, or `()`.
pub fn video_shown(d: &Domain) -> Dynamic {
    let Some(v) = d.videos.first() else {
        return Dynamic::UNIT;
    };
    map_of(vec![
        ("model", v.model.clone().into()),
        ("vram", opt_num(v.vram_kib.map(|k| (k / 1024) as i64))),
        ("heads", opt_num(v.heads)),
        ("accel3d", opt_bool(v.accel3d)),
    ])
}

pub const SOUND_MODELS: &[&str] = &[
    "ich9", "ich6", "ac97", "es1370", "sb16", "usb", "ich7", "pcspk",
];

/// `sound`: a model (`"ich9"`, `"ac97"`...) or `#{ model, codec }` (`codec`:
/// `duplex`, `micro`, `output`, for the ich models); `"none"`: no sound
/// device (and none by default with SPICE).
pub fn sound(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    let key = f.name("sound");
    let s = match form(f, "sound")? {
        None => None,
        Some(Form::Short(s)) if s == "none" => None,
        Some(Form::Short(s)) => {
            known_name(&key, &s, "sound model", SOUND_MODELS)?;
            Some(Sound {
                model: s,
                codecs: Vec::new(),
            })
        }
        Some(Form::Full(m)) => {
            let g = Fields::new(key.clone(), &m);
            let model = named(&g, "model", "sound model", SOUND_MODELS)?;
            let codec = named(&g, "codec", "sound codec", &["duplex", "micro", "output"])?;
            g.finish()?;
            let model = need(&g, "model", model, "the sound model")?;
            if let Some(c) = &codec {
                if !model.starts_with("ich") {
                    return Err(ScriptError::invalid(
                        &g.name("codec"),
                        c,
                        format!("codecs are for the ich6, ich7 and ich9 models, not {model}"),
                    ));
                }
            }
            Some(Sound {
                model,
                codecs: codec.into_iter().collect(),
            })
        }
    };
    d.sounds = s.into_iter().collect();
    Ok(())
}

/// `#{ model, codec }` of the first sound device, or `()`.
pub fn sound_shown(d: &Domain) -> Dynamic {
    let Some(s) = d.sounds.first() else {
        return Dynamic::UNIT;
    };
    map_of(vec![
        ("model", s.model.clone().into()),
        ("codec", opt_str(&s.codecs.first().cloned())),
    ])
}

// ---------------------------------------------------------------- console

pub const CONSOLE_TARGETS: &[&str] = &["serial", "virtio", "sclp", "sclplm"];

/// `console`: the console's target type, `"serial"` (the serial port's
/// console, the default) or `"virtio"` (hvc0); the serial port stays either
/// way (and so libvirt keeps a console on it). The map form is `#{ target }`.
pub fn console(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    let key = f.name("console");
    let target = match form(f, "console")? {
        None => return Ok(()),
        Some(Form::Short(s)) => s,
        Some(Form::Full(m)) => {
            let g = Fields::new(key.clone(), &m);
            let t = g.string("target")?;
            g.finish()?;
            need(&g, "target", t, "the console's target type")?
        }
    };
    known_name(&key, &target, "console target type", CONSOLE_TARGETS)?;
    let mut console = d.consoles.first().cloned().unwrap_or_else(CharDev::console_pty);
    console.target_type = Some(target);
    console.port = Some(0);
    d.consoles = vec![console];
    Ok(())
}

pub fn console_shown(d: &Domain) -> Dynamic {
    match d.consoles.first() {
        Some(c) => c.target_type.clone().unwrap_or_else(|| "serial".into()).into(),
        None => Dynamic::UNIT,
    }
}
