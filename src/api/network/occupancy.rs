//! What the networks on a host occupy (subnets, bridges), indexed so that a
//! new network's clashes are found by looking up its own subnets and bridge.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;

use super::validate::{network_string, ordinal, Subnet};
use crate::xml::network::{Ip, NetworkDef};
use crate::xml::FieldError;

/// What another network on the host occupies.
#[derive(Debug, Clone)]
pub struct Occupied {
    pub name: String,
    pub bridge: Option<String>,
    pub subnets: Vec<Subnet>,
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
    /// Names by CIDR block: (address width, network bits, prefix).
    blocks: BTreeMap<(u8, u128, u8), BTreeSet<String>>,
    /// How many blocks there are of each (width, prefix): the only prefix
    /// lengths a block containing a new subnet can have.
    prefixes: BTreeMap<(u8, u8), usize>,
    bridges: HashMap<String, BTreeSet<String>>,
}

/// (address width, network bits, prefix): equal for equal CIDR blocks.
fn block(s: &Subnet) -> (u8, u128, u8) {
    (s.max_prefix_len(), ordinal(s.network()), s.prefix_len())
}

/// The same address with a shorter prefix (`prefix` is at most the subnet's).
fn widened(s: &Subnet, prefix: u8) -> Subnet {
    IpNet::new(s.addr(), prefix).unwrap_or(*s)
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
            let block = block(s);
            if self
                .blocks
                .entry(block)
                .or_default()
                .insert(occupied.name.clone())
            {
                *self.prefixes.entry((block.0, block.2)).or_default() += 1;
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
            let block = block(s);
            let Some(names) = self.blocks.get_mut(&block) else {
                continue;
            };
            if names.remove(name) {
                if let Some(n) = self.prefixes.get_mut(&(block.0, block.2)) {
                    *n -= 1;
                    if *n == 0 {
                        self.prefixes.remove(&(block.0, block.2));
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
            let (width, network, prefix) = block(&s);
            let holding = self
                .prefixes
                .range((width, 0)..=(width, prefix))
                .map(|(&(_, q), _)| widened(&s, q))
                .find_map(|wide| Some((wide, other(self.blocks.get(&block(&wide))?)?)));
            let end = ordinal(s.broadcast());
            let inside = || {
                self.blocks
                    .range((width, network, prefix)..=(width, end, u8::MAX))
                    .find_map(|(&(_, n, q), names)| {
                        let addr = if width == 32 {
                            IpAddr::V4((n as u32).into())
                        } else {
                            IpAddr::V6(n.into())
                        };
                        Some((IpNet::new(addr, q).ok()?, other(names)?))
                    })
            };
            if let Some((block, name)) = holding.or_else(inside) {
                // The value as the user wrote it (`ip: "192.168.122.77/24"`),
                // not the network address it is in.
                return Err(FieldError::new(
                    format!("ips[{i}].address"),
                    format!("{}/{}", def.ips[i].address, s.prefix_len()),
                    format!("overlaps {} of network '{name}'", network_string(&block)),
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
