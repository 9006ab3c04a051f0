//! `vol.wipe()`: overwrite a volume's data with one of libvirt's algorithms.
use rhai::plugin::*;
use rhai::{Map, NativeCallContext};
use virt::sys;

use super::delete::refuse_if_backing;
use super::progress::run_job;
use super::Volume;
use crate::api::args::Fields;
use crate::api::error::{
    stopped as stopped_error, AtExt, LibvirtResultExt, ScriptError, ScriptResult,
};
use crate::api::pool::with_pool_retry;
use crate::runtime::journal;

const WIPE_ALGORITHMS: &[(&str, u32)] = &[
    ("zero", sys::VIR_STORAGE_VOL_WIPE_ALG_ZERO),
    ("nnsa", sys::VIR_STORAGE_VOL_WIPE_ALG_NNSA),
    ("dod", sys::VIR_STORAGE_VOL_WIPE_ALG_DOD),
    ("bsi", sys::VIR_STORAGE_VOL_WIPE_ALG_BSI),
    ("gutmann", sys::VIR_STORAGE_VOL_WIPE_ALG_GUTMANN),
    ("schneier", sys::VIR_STORAGE_VOL_WIPE_ALG_SCHNEIER),
    ("pfitzner7", sys::VIR_STORAGE_VOL_WIPE_ALG_PFITZNER7),
    ("pfitzner33", sys::VIR_STORAGE_VOL_WIPE_ALG_PFITZNER33),
    ("random", sys::VIR_STORAGE_VOL_WIPE_ALG_RANDOM),
    ("trim", sys::VIR_STORAGE_VOL_WIPE_ALG_TRIM),
];

#[export_module(manifest)]
pub mod volume_wipe_api {
    use super::*;

    /// Overwrite the volume's data (`virsh vol-wipe`), with zeros. Returns
    /// `#{ wiped: path, algorithm }`. Refused for a volume that other volumes are
    /// overlays of.
    ///
    /// ```rhai
    /// let v = HOST.pool("default-pool").create_volume(#{ name: "w.img", capacity: "1M" });
    /// let refused = "";
    /// try { v.wipe(); } catch (e) { refused = e.message; }
    /// // On a real host the volume is zeroed; the embedded test driver cannot wipe.
    /// assert(refused.contains("not supported by the connection driver"), refused);
    /// ```
    #[rhai_fn(name = "wipe", pure, return_raw)]
    pub fn wipe(ctx: NativeCallContext, vol: &mut Volume) -> ScriptResult<Map> {
        wipe_opts(ctx, vol, Map::new())
    }

    /// `wipe` with options: `algorithm` is one of libvirt's: `zero`, `nnsa`, `dod`, `bsi`,
    /// `gutmann`, `schneier`, `pfitzner7`, `pfitzner33`, `random`, `trim`; `force: true`
    /// wipes even a backing volume.
    ///
    /// ```rhai
    /// let v = HOST.pool("default-pool").create_volume(#{ name: "w.img", capacity: "1M" });
    /// let refused = #{};
    /// try { v.wipe(#{ algorithm: "shred" }); } catch (e) { refused = e; }
    /// assert_eq(refused.field, "algorithm");   // not one of libvirt's algorithms
    /// assert_eq(refused.value, "shred");
    /// ```
    #[rhai_fn(name = "wipe", pure, return_raw)]
    pub fn wipe_opts(ctx: NativeCallContext, vol: &mut Volume, opts: Map) -> ScriptResult<Map> {
        let f = Fields::new("", &opts);
        let algorithm = f.string("algorithm").at(&ctx)?;
        let force = f.boolean("force").at(&ctx)?.unwrap_or(false);
        f.finish().at(&ctx)?;
        let algorithm = algorithm.unwrap_or_else(|| "zero".into());
        let Some((_, alg)) = WIPE_ALGORITHMS.iter().find(|(n, _)| *n == algorithm) else {
            let names: Vec<&str> = WIPE_ALGORITHMS.iter().map(|(n, _)| *n).collect();
            return Err(ScriptError::invalid(
                "algorithm",
                &algorithm,
                format!("unknown wipe algorithm (libvirt's: {})", names.join(", ")),
            )
            .at(&ctx));
        };
        refuse_if_backing(vol, "wipe", force).at(&ctx)?;
        let path = vol.raw.path().script(&ctx)?;
        let raw = vol.raw.clone();
        let alg = *alg;
        let (result, stopped) = run_job(
            &format!("wiping {}", vol.label()),
            || None,
            move || with_pool_retry(|| raw.wipe_pattern(alg, 0)),
        );
        result.at(&ctx)?;
        journal::record(
            "wipe_volume",
            format!("volume {} ({algorithm})", vol.label()),
            None,
        );
        if let Some(reason) = stopped {
            return Err(stopped_error(&ctx, reason));
        }
        let mut out = Map::new();
        out.insert("wiped".into(), path.into());
        out.insert("algorithm".into(), algorithm.into());
        Ok(out)
    }
}
