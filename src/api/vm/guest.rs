//! What the guest shows: its IP addresses (lease, agent, ARP), its display
//! and its serial console.
use std::time::Duration;

use rhai::plugin::*;
use rhai::{Array, Map, NativeCallContext};
use virt::sys;

use super::{live_model, opt, Vm};
use crate::api::args::{self, Fields};
use crate::api::error::{AtExt, LibvirtResultExt, ScriptError, ScriptResult};
use crate::runtime::ErrorKind;

fn addresses_from(vm: &Vm, source: &str) -> Result<Array, virt::error::Error> {
    let code = match source {
        "agent" => sys::VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT,
        "arp" => sys::VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP,
        _ => sys::VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE,
    };
    let ifaces = vm.raw.interface_addresses(code, 0)?;
    let mut out = Array::new();
    for iface in ifaces {
        for a in &iface.addrs {
            let mut m = Map::new();
            m.insert("interface".into(), iface.name.clone().into());
            m.insert("mac".into(), opt(&iface.hwaddr));
            m.insert("ip".into(), a.addr.clone().into());
            m.insert("prefix".into(), (a.prefix as i64).into());
            m.insert(
                "family".into(),
                (if a.typed == sys::VIR_IP_ADDR_TYPE_IPV6 as i64 {
                    "ipv6"
                } else {
                    "ipv4"
                })
                .into(),
            );
            m.insert("source".into(), source.into());
            out.push(m.into());
        }
    }
    Ok(out)
}

/// `source`: where addresses come from, in the order they are asked.
fn sources_of(f: &Fields) -> Result<Vec<&'static str>, ScriptError> {
    Ok(
        match f
            .one_of("source", &["lease", "agent", "arp", "any"])?
            .as_deref()
            .unwrap_or("any")
        {
            "lease" => vec!["lease"],
            "agent" => vec!["agent"],
            "arp" => vec!["arp"],
            _ => vec!["lease", "agent", "arp"],
        },
    )
}

#[export_module(manifest)]
pub mod vm_guest_api {
    use super::*;

    /// The guest's IP addresses (`virsh domifaddr`) from `source`: `"lease"`
    /// (libvirt's DHCP), `"agent"` (guest agent), `"arp"`, or `"any"` (the first
    /// that answers). Maps with `interface`, `mac`, `ip`, `prefix`, `family`, `source`.
    ///
    /// ```rhai
    /// let a = HOST.vm("test").addresses(#{ source: "lease" });
    /// assert(a.all(|x| x.source == "lease"));
    /// assert_eq(a[0].interface, "testnet0");
    /// ```
    #[rhai_fn(name = "addresses", pure, return_raw)]
    pub fn addresses_with(ctx: NativeCallContext, vm: &mut Vm, opts: Map) -> ScriptResult<Array> {
        let f = Fields::new("", &opts);
        let sources = sources_of(&f).at(&ctx)?;
        f.finish().at(&ctx)?;
        let mut last_err = None;
        for s in &sources {
            match addresses_from(vm, s) {
                Ok(a) if !a.is_empty() => return Ok(a),
                Ok(_) => {}
                Err(e) => last_err = Some(e),
            }
        }
        match (sources.len(), last_err) {
            (1, Some(e)) => Err(e).script(&ctx),
            _ => Ok(Array::new()),
        }
    }

    /// `addresses(#{ source: "any" })`.
    ///
    /// ```rhai
    /// let a = HOST.vm("test").addresses();
    /// assert_eq(a[0].ip, "192.168.122.3");
    /// assert_eq(a[0].mac, "aa:bb:cc:dd:ee:ff");
    /// ```
    #[rhai_fn(name = "addresses", pure, return_raw)]
    pub fn addresses(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<Array> {
        addresses_with(ctx, vm, Map::new())
    }

    /// Wait for the guest's first IP address: `timeout` (seconds, default 120),
    /// `source` (`"lease"`, `"agent"`, `"arp"`, `"any"`). Returns `#{ ip, source,
    /// mac }` (IPv4 preferred); after the timeout an error says what was tried.
    ///
    /// ```rhai
    /// let ip = HOST.vm("test").wait_ip(#{ timeout: 0.2 });
    /// assert_eq(ip, #{ ip: "192.168.122.3", mac: "aa:bb:cc:dd:ee:ff", source: "lease" });
    /// ```
    #[rhai_fn(name = "wait_ip", pure, return_raw)]
    pub fn wait_ip_with(ctx: NativeCallContext, vm: &mut Vm, opts: Map) -> ScriptResult<Map> {
        let f = Fields::new("", &opts);
        let timeout = match f.raw("timeout") {
            Some(v) => args::seconds("timeout", v).at(&ctx)?,
            None => Duration::from_secs(120),
        };
        let sources = sources_of(&f).at(&ctx)?;
        f.finish().at(&ctx)?;
        let deadline = std::time::Instant::now() + timeout;
        let mut errors: Vec<String> = Vec::new();
        loop {
            errors.clear();
            for s in &sources {
                match addresses_from(vm, s) {
                    Ok(list) => {
                        let pick = list
                            .iter()
                            .find(|a| {
                                a.read_lock::<Map>()
                                    .is_some_and(|m| m["family"].to_string() == "ipv4")
                            })
                            .or_else(|| list.first());
                        if let Some(a) = pick.and_then(|a| a.read_lock::<Map>().map(|m| m.clone()))
                        {
                            let mut out = Map::new();
                            out.insert("ip".into(), a["ip"].clone());
                            out.insert("source".into(), (*s).into());
                            out.insert("mac".into(), a["mac"].clone());
                            return Ok(out);
                        }
                        errors.push(format!("{s}: no address yet"));
                    }
                    Err(e) => errors.push(format!("{s}: {}", e.message())),
                }
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                break;
            }
            crate::runtime::stop::sleep((deadline - now).min(Duration::from_millis(500)))
                .map_err(|r| crate::api::error::stopped(&ctx, r))?;
        }
        Err(ScriptError::new(
            ErrorKind::Timeout,
            format!(
                "VM {} has no IP address after {} s (tried {})",
                vm.name(),
                timeout.as_secs_f64(),
                errors.join("; ")
            ),
        )
        .with("field", "timeout")
        .with("value", timeout.as_secs_f64())
        .at(&ctx))
    }

    /// `wait_ip(#{ timeout: 120, source: "any" })`.
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// assert_eq(vm.wait_ip().ip, "192.168.122.3");
    /// vm.destroy();
    /// let refused = "";
    /// try { vm.wait_ip(); } catch (e) { refused = e.message; }
    /// assert_eq(refused, "VM test is not running");
    /// ```
    #[rhai_fn(name = "wait_ip", pure, return_raw)]
    pub fn wait_ip(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<Map> {
        if !vm.raw.is_active().script(&ctx)? {
            return Err(ScriptError::new(
                ErrorKind::State,
                format!("VM {} is not running", vm.name()),
            )
            .at(&ctx));
        }
        wait_ip_with(ctx, vm, Map::new())
    }

    /// The graphics URI of a running VM (`virsh domdisplay`): `vnc://127.0.0.1:0`
    /// or `spice://127.0.0.1:5900`.
    ///
    /// ```rhai
    /// let refused = "";
    /// try { print(HOST.vm("test").display()); } catch (e) { refused = e.message; }
    /// assert_eq(refused, "VM test has no graphics (graphics: \"none\")");
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn display(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<String> {
        let (d, _) = live_model(vm, &ctx)?;
        let g = d.graphics.first().ok_or_else(|| {
            ScriptError::new(
                ErrorKind::Display,
                format!("VM {} has no graphics (graphics: \"none\")", d.name),
            )
            .at(&ctx)
        })?;
        let port = g.port.filter(|p| *p > 0).ok_or_else(|| {
            ScriptError::new(
                ErrorKind::Display,
                format!("VM {} is not running, so its display has no port", d.name),
            )
            .at(&ctx)
        })?;
        let host = match g.listen.as_deref() {
            None | Some("0.0.0.0") | Some("::") | Some("") => "127.0.0.1",
            Some(h) => h,
        };
        Ok(match g.graphics_type.as_str() {
            "vnc" => format!("vnc://{host}:{}", port - 5900),
            other => format!("{other}://{host}:{port}"),
        })
    }

    /// Attach this terminal to the VM's serial console like `virsh console`
    /// (Ctrl-] leaves). Needs an interactive terminal.
    ///
    /// ```rhai
    /// let refused = "";
    /// try { HOST.vm("test").console(); } catch (e) { refused = e.message; }
    /// // Examples run without a terminal; in the REPL or a shell it attaches.
    /// assert_eq(refused, "console() needs an interactive terminal");
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn console(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<()> {
        // SAFETY: isatty only inspects the descriptor.
        let tty = unsafe { libc::isatty(0) == 1 && libc::isatty(1) == 1 };
        if !tty {
            return Err(ScriptError::new(
                ErrorKind::Console,
                "console() needs an interactive terminal",
            )
            .at(&ctx));
        }
        let status = std::process::Command::new("virsh")
            .arg("-c")
            .arg(vm.host.uri())
            .arg("console")
            .arg(vm.raw.uuid_string().script(&ctx)?)
            .status()
            .map_err(|e| {
                ScriptError::new(ErrorKind::Console, format!("cannot run virsh console: {e}"))
                    .at(&ctx)
            })?;
        if !status.success() {
            return Err(ScriptError::new(
                ErrorKind::Console,
                format!("virsh console ended with {status}"),
            )
            .at(&ctx));
        }
        Ok(())
    }
}
