//! What the networks on a host occupy (subnets, bridges), indexed so that a
//! new network's clashes are found by looking up its own subnets and bridge.
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use ipnet::IpNet;
use rhai::{EvalAltResult, NativeCallContext};
use virt::error::{Error as VirtError, ErrorNumber};

use super::lookup;
use super::spec::NetworkSpec;
use crate::api::error::{LibvirtResultExt, ScriptError, ScriptResult};
use crate::api::Host;
use crate::xml::network::{Ip, NetworkDef};
use crate::xml::FieldError;

/// What another network on the host occupies.
#[derive(Debug, Clone)]
pub struct Occupied {
    pub name: String,
    pub bridge: Option<String>,
    pub subnets: Vec<IpNet>,
}

impl Occupied {
    pub fn of(def: &NetworkDef) -> Occupied {
        Occupied {
            name: def.name.clone(),
            bridge: def.bridge.as_ref().and_then(|b| b.name.clone()),
            subnets: def.ips.iter().filter_map(Ip::subnet).collect(),
        }
    }
}

/// What the networks on one host occupy, indexed so that checking a new
/// network looks up its own subnets and bridge instead of passing over every
/// other network (defining n networks would be O(n²)).
#[derive(Debug, Default)]
pub struct Occupancy {
    networks: HashMap<String, Occupied>,
    /// Names by CIDR block (the subnet's network, `10.1.2.0/24`), in
    /// address order: the blocks inside a subnet are one range.
    blocks: BTreeMap<IpNet, BTreeSet<String>>,
    /// How many blocks there are of each (address width, prefix): the only
    /// prefix lengths a block containing a new subnet can have.
    prefixes: BTreeMap<(u8, u8), usize>,
    bridges: HashMap<String, BTreeSet<String>>,
}

/// The index key of a subnet: its CIDR block, and its (width, prefix).
fn block(s: &IpNet) -> (IpNet, (u8, u8)) {
    (s.trunc(), (s.max_prefix_len(), s.prefix_len()))
}

impl Occupancy {
    pub fn len(&self) -> usize {
        self.networks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.networks.contains_key(name)
    }

    /// Add a network, replacing what a network of that name occupied before.
    pub fn insert(&mut self, occupied: Occupied) {
        self.remove(&occupied.name.clone());
        for s in &occupied.subnets {
            let (block, size) = block(s);
            if self
                .blocks
                .entry(block)
                .or_default()
                .insert(occupied.name.clone())
            {
                *self.prefixes.entry(size).or_default() += 1;
            }
        }
        if let Some(b) = &occupied.bridge {
            self.bridges
                .entry(b.clone())
                .or_default()
                .insert(occupied.name.clone());
        }
        self.networks.insert(occupied.name.clone(), occupied);
    }

    pub fn remove(&mut self, name: &str) {
        let Some(old) = self.networks.remove(name) else {
            return;
        };
        for s in &old.subnets {
            let (block, size) = block(s);
            let Some(names) = self.blocks.get_mut(&block) else {
                continue;
            };
            if names.remove(name) {
                if let Some(n) = self.prefixes.get_mut(&size) {
                    *n -= 1;
                    if *n == 0 {
                        self.prefixes.remove(&size);
                    }
                }
            }
            if names.is_empty() {
                self.blocks.remove(&block);
            }
        }
        if let Some(b) = &old.bridge {
            if let Some(names) = self.bridges.get_mut(b) {
                names.remove(name);
                if names.is_empty() {
                    self.bridges.remove(b);
                }
            }
        }
    }

    /// Keep only the networks `keep` says yes to.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        let gone: Vec<String> = self
            .networks
            .keys()
            .filter(|n| !keep(n.as_str()))
            .cloned()
            .collect();
        for name in gone {
            self.remove(&name);
        }
    }

    /// Conflicts of `def` with the other networks (a network of the same name
    /// is not "other": redefining it may keep its subnet and bridge).
    pub fn check(&self, def: &NetworkDef) -> Result<(), FieldError> {
        let other = |names: &BTreeSet<String>| names.iter().find(|n| **n != def.name).cloned();
        for (i, s) in def
            .ips
            .iter()
            .enumerate()
            .filter_map(|(i, ip)| ip.subnet().map(|s| (i, s)))
        {
            // CIDR blocks overlap only when one holds the other: a block
            // holding this one at one of the prefix lengths in use, or a
            // block inside this one.
            let (width, prefix) = (s.max_prefix_len(), s.prefix_len());
            let holding = self
                .prefixes
                .range((width, 0)..=(width, prefix))
                .filter_map(|(&(_, q), _)| IpNet::new(s.addr(), q).ok())
                .map(|wide| wide.trunc())
                .find_map(|wide| Some((wide, other(self.blocks.get(&wide)?)?)));
            // From the block itself to its last address as a block of one.
            let last = IpNet::new(s.broadcast(), width).unwrap_or(s);
            let inside = || {
                self.blocks
                    .range(s.trunc()..=last)
                    .find_map(|(inner, names)| Some((*inner, other(names)?)))
            };
            if let Some((block, name)) = holding.or_else(inside) {
                // The value as the user wrote it (`ip: "192.168.122.77/24"`),
                // not the network address it is in.
                return Err(FieldError::new(
                    format!("ips[{i}].address"),
                    format!("{}/{}", def.ips[i].address, s.prefix_len()),
                    format!("overlaps {} of network '{name}'", block.trunc()),
                ));
            }
        }
        // A forward mode='bridge' network names an existing host bridge that
        // several networks may share; only libvirt-made bridges must be unique.
        let shares_host_bridge = matches!(
            def.forward.as_ref().and_then(|f| f.mode.as_deref()),
            Some("bridge")
        );
        if let Some(b) = def.bridge.as_ref().and_then(|b| b.name.as_ref()) {
            if let Some(name) = self.bridges.get(b).and_then(other) {
                if !shares_host_bridge {
                    return Err(FieldError::new(
                        "bridge.name",
                        b,
                        format!("already used by network '{name}'"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// What the networks on each host occupy (subnets, bridges): per URI, by name.
/// Filled from libvirt for networks we have not seen and kept up to date by our
/// own defines, so validating a new network costs a listing of names, not a
/// re-read of every other network (listing network objects is costly too:
/// libvirt formats each one's UUID for a debug message when it is freed).
/// A network redefined by another client keeps its old entry until it is
/// undefined, and the cache is trusted while the host has as many networks as
/// it holds: validation against other clients' concurrent changes is best
/// effort (libvirt still refuses real conflicts when a network starts).
///
/// `test:///default` lives inside this process, so no other client can change
/// it: there the cache is trusted without counting (counting walks every
/// network), and a clash it reports is confirmed against libvirt before a
/// define is refused, since networks removed since stay cached.
type OccupiedCache = HashMap<String, Occupancy>;

static OCCUPIED: Mutex<Option<OccupiedCache>> = Mutex::new(None);

/// Calls `f` with what `host`'s networks occupy, by name (under the cache's
/// lock: `f` must not call libvirt).
fn with_occupied<R>(host: &Host, f: impl FnOnce(&Occupancy) -> R) -> Result<R, VirtError> {
    let trusted = cache_is_authoritative(host.uri());
    // Fast path: as many networks as we know of, so (short of another client
    // swapping one for another in between) the cache is current.
    let count = if trusted {
        None
    } else {
        Some(
            host.conn().num_of_networks()? as usize
                + host.conn().num_of_defined_networks()? as usize,
        )
    };
    {
        let guard = OCCUPIED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(cache) = guard.as_ref().and_then(|c| c.get(host.uri())) {
            if count.is_none_or(|count| cache.len() == count) {
                return Ok(f(cache));
            }
        }
    }
    let mut names = host.conn().list_networks()?;
    names.extend(host.conn().list_defined_networks()?);
    let mut guard = OCCUPIED.lock().unwrap_or_else(|e| e.into_inner());
    let cache = guard
        .get_or_insert_with(HashMap::new)
        .entry(host.uri().to_owned())
        .or_default();
    for name in &names {
        if cache.contains(name) {
            continue;
        }
        // Gone since listed: nothing to check against.
        let Some(net) = lookup(host, name)? else {
            continue;
        };
        let xml = match net.xml_desc(0) {
            Ok(xml) => xml,
            Err(e) if e.code() == ErrorNumber::NoNetwork.into() => continue,
            Err(e) => return Err(e),
        };
        cache.insert(match NetworkDef::parse(&xml) {
            Ok(def) => Occupied::of(&def),
            Err(_) => Occupied {
                name: name.clone(),
                bridge: None,
                subnets: Vec::new(),
            },
        });
    }
    // Drop what is no longer listed: now exactly the listed networks that
    // still exist (a count alone can hide a removed network behind one that
    // was listed and is gone again).
    let listed: HashSet<&str> = names.iter().map(String::as_str).collect();
    cache.retain(|name| listed.contains(name));
    Ok(f(cache))
}

/// Whether our own defines are the only changes `uri`'s networks see: true for
/// `test:///default`, one test driver inside this process shared by all its
/// connections here. (Not every `host::in_process` URI: each connection to a
/// `test:///file.xml` gets a driver of its own, while this cache is per URI.)
fn cache_is_authoritative(uri: &str) -> bool {
    uri == "test:///default"
}

/// Forget what `host`'s networks occupy: the next check re-reads them all.
pub(super) fn invalidate(host: &Host) {
    let mut guard = OCCUPIED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(cache) = guard.as_mut() {
        cache.remove(host.uri());
    }
}

/// Why `def` cannot be defined next to the other networks.
enum Clash {
    /// Another network has this name (only for new networks).
    Name,
    Field(FieldError),
}

/// The first clash of `def` with the other networks on its host. A clash found
/// in a trusted cache (see [`OCCUPIED`]) is confirmed on freshly read networks.
fn find_clash(host: &Host, def: &NetworkDef, new: bool) -> Result<Option<Clash>, VirtError> {
    let clash_in = |others: &Occupancy| {
        if new && others.contains(&def.name) {
            return Some(Clash::Name);
        }
        others.check(def).err().map(Clash::Field)
    };
    let clash = with_occupied(host, clash_in)?;
    if clash.is_none() || !cache_is_authoritative(host.uri()) {
        return Ok(clash);
    }
    invalidate(host);
    with_occupied(host, clash_in)
}

/// A clash as a script error, named by the spec's key when there is a spec.
fn clash_error(
    ctx: &NativeCallContext,
    e: FieldError,
    spec: Option<&NetworkSpec>,
) -> Box<EvalAltResult> {
    ScriptError::from(match spec {
        Some(s) => s.field_name(e),
        None => e,
    })
    .at(ctx)
}

pub(super) fn remember(host: &Host, def: &NetworkDef) {
    let mut guard = OCCUPIED.lock().unwrap_or_else(|e| e.into_inner());
    guard
        .get_or_insert_with(HashMap::new)
        .entry(host.uri().to_owned())
        .or_default()
        .insert(Occupied::of(def));
}

/// Checks against the host before `def` is defined: its subnets and bridge
/// do not clash with another network, and, for a `new` network (not one
/// being changed), its name is free.
pub(super) fn check_clash(
    ctx: &NativeCallContext,
    host: &Host,
    def: &NetworkDef,
    spec: Option<&NetworkSpec>,
    new: bool,
) -> ScriptResult<()> {
    match find_clash(host, def, new).script(ctx)? {
        None => Ok(()),
        Some(Clash::Name) => Err(ScriptError::invalid(
            "name",
            &def.name,
            format!(
                "a network with this name already exists on {} (use ensure_network or edit to change it)",
                host.uri()
            ),
        )
        .at(ctx)),
        Some(Clash::Field(e)) => Err(clash_error(ctx, e, spec)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(xml_inner: &str) -> NetworkDef {
        NetworkDef::parse(&format!("<network>{xml_inner}</network>")).unwrap()
    }

    fn occupancy(nets: &[&str]) -> Occupancy {
        let mut o = Occupancy::default();
        for inner in nets {
            o.insert(Occupied::of(&net(inner)));
        }
        o
    }

    #[test]
    fn occupancy_finds_every_kind_of_overlap_and_only_those() {
        let o = occupancy(&[
            "<name>a</name><bridge name='br-a'/><ip address='10.1.2.1' prefix='24'/>",
            "<name>wide</name><ip address='172.16.0.1' prefix='12'/>",
            "<name>v6</name><ip family='ipv6' address='2001:db8:1::1' prefix='64'/>",
        ]);
        let clash = |inner: &str| {
            o.check(&net(inner))
                .map_err(|e| (e.field, e.value, e.problem))
        };
        // The same block, a block holding it, a block inside it.
        assert_eq!(
            clash("<name>x</name><ip address='10.1.2.9' prefix='24'/>"),
            Err((
                "ips[0].address".into(),
                "10.1.2.9/24".into(),
                "overlaps 10.1.2.0/24 of network 'a'".into()
            ))
        );
        assert_eq!(
            clash("<name>x</name><ip address='172.20.5.1' prefix='24'/>")
                .unwrap_err()
                .2,
            "overlaps 172.16.0.0/12 of network 'wide'"
        );
        assert_eq!(
            clash("<name>x</name><ip address='10.0.0.1' prefix='8'/>")
                .unwrap_err()
                .2,
            "overlaps 10.1.2.0/24 of network 'a'"
        );
        assert_eq!(
            clash("<name>x</name><ip address='10.9.9.1' prefix='24'/><ip family='ipv6' address='2001:db8:1:0:8000::1' prefix='65'/>")
                .unwrap_err()
                .0,
            "ips[1].address"
        );
        // Neighbours, the other family, and the network itself being redefined.
        assert_eq!(
            clash("<name>x</name><ip address='10.1.3.1' prefix='24'/>"),
            Ok(())
        );
        assert_eq!(
            clash("<name>x</name><ip address='172.32.0.1' prefix='16'/>"),
            Ok(())
        );
        assert_eq!(
            clash("<name>x</name><ip family='ipv6' address='2001:db8:2::1' prefix='64'/>"),
            Ok(())
        );
        assert_eq!(
            clash("<name>a</name><bridge name='br-a'/><ip address='10.1.2.1' prefix='24'/>"),
            Ok(())
        );
        // Bridges: unique, unless the new network shares an existing host bridge.
        assert_eq!(
            clash("<name>x</name><bridge name='br-a'/>").unwrap_err().2,
            "already used by network 'a'"
        );
        assert_eq!(
            clash("<name>x</name><forward mode='bridge'/><bridge name='br-a'/>"),
            Ok(())
        );
    }

    #[test]
    fn occupancy_forgets_what_a_removed_or_redefined_network_held() {
        let mut o = occupancy(&[
            "<name>a</name><bridge name='br-a'/><ip address='10.1.2.1' prefix='24'/>",
            "<name>b</name><ip address='10.1.2.1' prefix='24'/>",
        ]);
        let x = net("<name>x</name><bridge name='br-a'/><ip address='10.1.2.5' prefix='24'/>");
        o.remove("a");
        assert_eq!(
            o.check(&x).unwrap_err().problem,
            "overlaps 10.1.2.0/24 of network 'b'"
        );
        o.insert(Occupied::of(&net(
            "<name>b</name><ip address='10.7.0.1' prefix='16'/>",
        )));
        assert_eq!(o.check(&x), Ok(()));
        assert_eq!(o.len(), 1);
        o.retain(|name| name != "b");
        assert!(o.is_empty());
        assert!(o.blocks.is_empty() && o.prefixes.is_empty() && o.bridges.is_empty());
    }
}
