//! `cloud_init`: a NoCloud seed ISO, built in memory and attached as a
//! CD-ROM; on a real host it is uploaded as a volume into one of its pools.
use rhai::Map;
use virt::connect::Connect;

use super::install::cdrom_disk;
use super::NewVolume;
use crate::api::args::Fields;
use crate::api::error::ScriptError;
use crate::xml::domain::Domain;

/// A cloud-init NoCloud seed: its files, built into an ISO image in memory.
pub struct Seed {
    pub files: Vec<(String, String)>,
    /// Index into `domain.disks` of the CD-ROM that holds it.
    pub disk: usize,
    /// Where it goes: a volume of this name in this pool of the target host
    /// (uploaded through libvirt, so it works for remote hosts too), or, on
    /// the in-process test driver (which a `--plan` rehearsal uses), a private local file
    /// already named in the disk's source.
    pub volume: Option<(String, String)>,
}

/// The seed volume's name for VM `name`: undefine removes it with the VM.
pub fn seed_volume_name(name: &str) -> String {
    format!("virtscript-{name}-cidata.iso")
}

/// The pool a seed is uploaded to: `cloud_init.pool`, else the pool of the
/// VM's first new disk, else `default`; it must be running.
fn seed_pool(
    conn: &Connect,
    given: Option<String>,
    new_volumes: &[NewVolume],
) -> Result<String, ScriptError> {
    let (pool, field) = match given {
        Some(p) => (p, "cloud_init.pool"),
        None => match new_volumes.first() {
            Some(nv) => (nv.pool.clone(), "cloud_init.pool"),
            None => ("default".to_owned(), "cloud_init.pool"),
        },
    };
    let active = conn
        .lookup_storage_pool_by_name(&pool)
        .ok()
        .map(|p| p.is_active().unwrap_or(false));
    match active {
        Some(true) => Ok(pool),
        Some(false) => Err(ScriptError::invalid(
            field,
            &pool,
            "the seed goes into this storage pool, which is not running",
        )),
        None => Err(ScriptError::invalid(
            field,
            &pool,
            "the seed is uploaded into a storage pool of the host: no pool by this name (give cloud_init.pool)",
        )),
    }
}

/// Where the NoCloud seed of VM `name` goes on the in-process test driver
/// (which keeps no volume data, so nothing can be uploaded to it): a private
/// temporary directory (`policy::local_path`), removed at exit. Real hosts get
/// the seed as a volume uploaded into one of their pools.
pub fn seed_path(conn: &Connect, name: &str) -> Result<String, ScriptError> {
    let uri = conn.uri().unwrap_or_default();
    let path = crate::api::policy::local_path(
        &uri,
        "cloud_init",
        &seed_volume_name(name),
        true,
        true,
        crate::api::policy::Writer::Us,
    )?;
    Ok(path.to_string_lossy().into_owned())
}

/// `cloud_init: #{ user_data, meta_data, network_config, pool }`: the seed's
/// files and where it goes, its CD-ROM added to `d` on `cdrom_bus`.
pub(super) fn plan_seed(
    conn: &Connect,
    ci: &Map,
    d: &mut Domain,
    cdrom_bus: &str,
    new_volumes: &[NewVolume],
) -> Result<Seed, ScriptError> {
    let name = d.name.clone();
    let c = Fields::new("cloud_init", ci);
    let user = c.string("user_data")?;
    let meta = c.string("meta_data")?;
    let network = c.string("network_config")?;
    let pool = c.string("pool")?;
    c.finish()?;
    let user = user.unwrap_or_else(|| "#cloud-config\n".into());
    let meta = meta.unwrap_or_else(|| format!("instance-id: {name}\nlocal-hostname: {name}\n"));
    let mut files = vec![
        ("user-data".to_owned(), user),
        ("meta-data".to_owned(), meta),
    ];
    if let Some(net) = network {
        files.push(("network-config".into(), net));
    }
    let (source, volume) = if conn.uri().unwrap_or_default().starts_with("test:") {
        (Some(seed_path(conn, &name)?), None)
    } else {
        let pool = seed_pool(conn, pool, new_volumes)?;
        let file = seed_volume_name(&name);
        // The seed's path shown before it exists (a dry run's XML).
        let source = conn
            .lookup_storage_pool_by_name(&pool)
            .ok()
            .and_then(|p| crate::api::pool::target_path(&p))
            .map(|dir| format!("{dir}/{file}"));
        (source, Some((pool, file)))
    };
    d.disks
        .push(cdrom_disk(d.next_target(cdrom_bus), cdrom_bus, source));
    Ok(Seed {
        files,
        disk: d.disks.len() - 1,
        volume,
    })
}
