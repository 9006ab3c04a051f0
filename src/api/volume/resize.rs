//! `vol.resize(size)`: grow, or shrink when asked.
use rhai::plugin::*;
use rhai::{Dynamic, Map, NativeCallContext};
use virt::sys;

use super::delete::refuse_if_backing;
use super::Volume;
use crate::api::args::{self, Fields, NumberUnit};
use crate::api::error::{AtExt, LibvirtResultExt, ScriptError, ScriptResult};
use crate::api::pool::with_pool_retry;
use crate::runtime::journal;
use crate::runtime::units::format_size;

#[export_module(manifest)]
pub mod volume_resize_api {
    use super::*;

    /// Change the capacity (`virsh vol-resize`): `"20G"`, or `"+5G"` to grow by that much.
    /// Growing is the default; shrinking needs `resize(size, #{ shrink: true })`.
    /// Returns `#{ capacity, previous }`.
    ///
    /// ```rhai
    /// let v = HOST.pool("default-pool").create_volume(#{ name: "r.img", capacity: "1G" });
    /// let refused = "";
    /// try { v.resize("2G"); } catch (e) { refused = e.message; }
    /// // On a real host the volume grows to 2G; the embedded test driver cannot resize.
    /// assert(refused.contains("not supported by the connection driver"), refused);
    /// assert_eq(v.capacity, 1073741824);
    /// ```
    #[rhai_fn(name = "resize", pure, return_raw)]
    pub fn resize(ctx: NativeCallContext, vol: &mut Volume, size: Dynamic) -> ScriptResult<Map> {
        resize_opts(ctx, vol, size, Map::new())
    }

    /// `resize` with options: `shrink: true` allows a smaller capacity (data past the new
    /// end is lost), `force: true` resizes even a volume other volumes are overlays of.
    ///
    /// ```rhai
    /// let v = HOST.pool("default-pool").create_volume(#{ name: "r.img", capacity: "2G" });
    /// let refused = "";
    /// try { v.resize("1G"); } catch (e) { refused = e.message; }
    /// assert(refused.contains("shrink"), refused);   // shrinking needs #{ shrink: true }
    /// assert_eq(v.capacity, 2147483648);
    /// ```
    #[rhai_fn(name = "resize", pure, return_raw)]
    pub fn resize_opts(
        ctx: NativeCallContext,
        vol: &mut Volume,
        size: Dynamic,
        opts: Map,
    ) -> ScriptResult<Map> {
        let f = Fields::new("", &opts);
        let shrink = f.boolean("shrink").at(&ctx)?.unwrap_or(false);
        let force = f.boolean("force").at(&ctx)?.unwrap_or(false);
        f.finish().at(&ctx)?;
        let previous = vol.raw.info().script(&ctx)?.capacity;
        let new = match size.clone().into_string() {
            Ok(text) if text.trim_start().starts_with('+') => {
                let delta =
                    crate::runtime::units::parse_size(text.trim_start().trim_start_matches('+'))
                        .map_err(|p| ScriptError::invalid("size", &text, p).at(&ctx))?;
                previous.checked_add(delta).ok_or_else(|| {
                    ScriptError::invalid("size", &text, "size is too large").at(&ctx)
                })?
            }
            _ => args::size("size", &size, NumberUnit::Bytes, true).at(&ctx)?,
        };
        if new < previous && !shrink {
            return Err(ScriptError::invalid(
                "size",
                size.to_string(),
                format!(
                    "smaller than the current capacity of {} ({}); pass #{{ shrink: true }} to shrink it (data past the new end is lost)",
                    vol.label(),
                    format_size(previous)
                ),
            )
            .at(&ctx));
        }
        if new == 0 {
            return Err(
                ScriptError::invalid("size", size.to_string(), "must be larger than 0").at(&ctx),
            );
        }
        let mut out = Map::new();
        out.insert("previous".into(), (previous as i64).into());
        out.insert("capacity".into(), (new as i64).into());
        if new == previous {
            return Ok(out);
        }
        refuse_if_backing(vol, "resize", force).at(&ctx)?;
        let flags = if new < previous {
            sys::VIR_STORAGE_VOL_RESIZE_SHRINK
        } else {
            0
        };
        with_pool_retry(|| vol.raw.resize(new, flags)).script(&ctx)?;
        journal::record(
            "resize_volume",
            format!(
                "volume {} {} -> {}",
                vol.label(),
                format_size(previous),
                format_size(new)
            ),
            None,
        );
        Ok(out)
    }
}
