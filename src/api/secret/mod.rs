//! `Secret` script object: the host's secrets as `virsh secret-list` shows
//! them (UUID, usage, description, flags), read only. Their values are never
//! read: nothing here asks libvirt for one, so no script can print one.
mod object;

use std::sync::Arc;

use rhai::plugin::*;
use rhai::{Array, Dynamic, NativeCallContext};

use super::error::{AtExt, ErrorKind, ScriptError, ScriptResult};
use super::Host;
use crate::xml::tree::Element;

/// One secret of a host (its definition, never its value).
#[derive(Clone)]
pub struct Secret {
    pub host: Host,
    pub raw: Arc<virt::secret::Secret>,
}

/// What a secret's XML says of it.
struct Definition {
    description: Option<String>,
    ephemeral: bool,
    private: bool,
    /// `volume`, `ceph`, `iscsi`, `tls`, `vtpm`, or `none`.
    usage: String,
    /// The volume path, Ceph or TLS name, iSCSI target the secret is for.
    usage_id: Option<String>,
}

impl Secret {
    pub fn uuid(&self) -> String {
        self.raw.uuid_string().unwrap_or_default()
    }

    fn definition(&self) -> Result<Definition, ScriptError> {
        let xml = self.raw.xml_desc(0).map_err(|e| ScriptError::libvirt(&e))?;
        let doc = Element::parse(&xml).map_err(|e| {
            ScriptError::new(
                ErrorKind::Xml,
                format!("cannot read secret {}'s XML: {e}", self.uuid()),
            )
        })?;
        Ok(definition_of(&doc))
    }
}

fn definition_of(doc: &Element) -> Definition {
    let usage = doc.child("usage");
    let usage_id = usage
        .and_then(|u| u.elements().next())
        .map(|e| e.text().trim().to_owned());
    Definition {
        description: doc.child("description").map(|d| d.text()),
        ephemeral: doc.attr("ephemeral") == Some("yes"),
        private: doc.attr("private") == Some("yes"),
        usage: usage
            .and_then(|u| u.attr("type"))
            .unwrap_or("none")
            .to_owned(),
        usage_id,
    }
}

/// The host's secrets, sorted by UUID.
fn list(host: &Host) -> Result<Vec<Secret>, ScriptError> {
    let raw = host
        .conn()
        .list_all_secrets(0)
        .map_err(|e| ScriptError::libvirt(&e))?;
    let mut out: Vec<Secret> = raw
        .into_iter()
        .map(|raw| Secret {
            host: host.clone(),
            raw: raw.into(),
        })
        .collect();
    out.sort_by_key(Secret::uuid);
    Ok(out)
}

fn text_or_unit(value: Option<String>) -> Dynamic {
    value.map(Dynamic::from).unwrap_or(Dynamic::UNIT)
}

#[export_module(manifest)]
pub mod secret_api {
    use super::*;

    pub type Secret = super::Secret;

    /// The host's secrets (`virsh secret-list`), sorted by UUID: what each
    /// is for, never its value. A host without a secret driver (the embedded
    /// test driver) refuses (`kind: "libvirt"`, `code_name:
    /// "VIR_ERR_NO_SUPPORT"`).
    ///
    /// ```rhai
    /// let secrets = [];
    /// try { secrets = HOST.secrets(); } catch (e) { assert_eq(e.code_name, "VIR_ERR_NO_SUPPORT"); }
    /// assert_eq(type_of(secrets), "array");
    /// for s in secrets { print(`${s.uuid} ${s.usage} ${s.usage_id}`); }
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn secrets(ctx: NativeCallContext, host: &mut Host) -> ScriptResult<Array> {
        let secrets = list(host).at(&ctx)?;
        Ok(secrets.into_iter().map(Dynamic::from).collect())
    }

    /// The secret's UUID, how libvirt and domain XML (`<secret uuid=...>`) name it.
    ///
    /// ```rhai
    /// let secrets = [];
    /// try { secrets = HOST.secrets(); } catch (e) { assert_eq(e.code_name, "VIR_ERR_NO_SUPPORT"); }
    /// for s in secrets { assert_eq(s.uuid.len(), 36); }
    /// assert_eq(type_of(secrets), "array");
    /// ```
    #[rhai_fn(get = "uuid", pure)]
    pub fn uuid(secret: &mut Secret) -> String {
        secret.uuid()
    }

    /// What the secret is for: `volume` (an encrypted volume), `ceph`,
    /// `iscsi`, `tls`, `vtpm`, or `none`.
    ///
    /// ```rhai
    /// let secrets = [];
    /// try { secrets = HOST.secrets(); } catch (e) { assert_eq(e.code_name, "VIR_ERR_NO_SUPPORT"); }
    /// for s in secrets { assert(["none", "volume", "ceph", "iscsi", "tls", "vtpm"].contains(s.usage)); }
    /// assert_eq(type_of(secrets), "array");
    /// ```
    #[rhai_fn(get = "usage", pure, return_raw)]
    pub fn usage(ctx: NativeCallContext, secret: &mut Secret) -> ScriptResult<String> {
        Ok(secret.definition().at(&ctx)?.usage)
    }

    /// Whom the secret is for: the volume's path, the Ceph or TLS name, the
    /// iSCSI target (what `virsh secret-list` shows after the usage); `()`
    /// for usage `none`.
    ///
    /// ```rhai
    /// let secrets = [];
    /// try { secrets = HOST.secrets(); } catch (e) { assert_eq(e.code_name, "VIR_ERR_NO_SUPPORT"); }
    /// for s in secrets { assert((s.usage == "none") == (s.usage_id == ())); }
    /// assert_eq(type_of(secrets), "array");
    /// ```
    #[rhai_fn(get = "usage_id", pure, return_raw)]
    pub fn usage_id(ctx: NativeCallContext, secret: &mut Secret) -> ScriptResult<Dynamic> {
        Ok(text_or_unit(secret.definition().at(&ctx)?.usage_id))
    }

    /// The secret's description, `()` when it has none.
    ///
    /// ```rhai
    /// let secrets = [];
    /// try { secrets = HOST.secrets(); } catch (e) { assert_eq(e.code_name, "VIR_ERR_NO_SUPPORT"); }
    /// for s in secrets { assert(s.description == () || type_of(s.description) == "string"); }
    /// assert_eq(type_of(secrets), "array");
    /// ```
    #[rhai_fn(get = "description", pure, return_raw)]
    pub fn description(ctx: NativeCallContext, secret: &mut Secret) -> ScriptResult<Dynamic> {
        Ok(text_or_unit(secret.definition().at(&ctx)?.description))
    }

    /// Whether libvirt keeps the secret in memory only (`ephemeral='yes'`).
    ///
    /// ```rhai
    /// let secrets = [];
    /// try { secrets = HOST.secrets(); } catch (e) { assert_eq(e.code_name, "VIR_ERR_NO_SUPPORT"); }
    /// for s in secrets { assert_eq(type_of(s.ephemeral), "bool"); }
    /// assert_eq(type_of(secrets), "array");
    /// ```
    #[rhai_fn(get = "ephemeral", pure, return_raw)]
    pub fn ephemeral(ctx: NativeCallContext, secret: &mut Secret) -> ScriptResult<bool> {
        Ok(secret.definition().at(&ctx)?.ephemeral)
    }

    /// Whether libvirt refuses to give the value to any client (`private='yes'`;
    /// `private` itself is a Rhai keyword).
    ///
    /// ```rhai
    /// let secrets = [];
    /// try { secrets = HOST.secrets(); } catch (e) { assert_eq(e.code_name, "VIR_ERR_NO_SUPPORT"); }
    /// for s in secrets { assert_eq(type_of(s.is_private), "bool"); }
    /// assert_eq(type_of(secrets), "array");
    /// ```
    #[rhai_fn(get = "is_private", pure, return_raw)]
    pub fn is_private(ctx: NativeCallContext, secret: &mut Secret) -> ScriptResult<bool> {
        Ok(secret.definition().at(&ctx)?.private)
    }

    /// `Secret(uuid)`.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn to_string(secret: &mut Secret) -> String {
        format!("Secret({})", secret.uuid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_definition_says_usage_and_flags() {
        let doc = Element::parse(
            "<secret ephemeral='no' private='yes'><uuid>c8d3e3a2-0000-4000-8000-000000000001</uuid>\
             <description>disk key</description>\
             <usage type='volume'><volume>/var/lib/libvirt/images/a.qcow2</volume></usage></secret>",
        )
        .unwrap();
        let d = definition_of(&doc);
        assert_eq!(d.usage, "volume");
        assert_eq!(
            d.usage_id.as_deref(),
            Some("/var/lib/libvirt/images/a.qcow2")
        );
        assert_eq!(d.description.as_deref(), Some("disk key"));
        assert!(d.private && !d.ephemeral);
        let d = definition_of(&Element::parse("<secret><uuid>x</uuid></secret>").unwrap());
        assert_eq!(d.usage, "none");
        assert_eq!(d.usage_id, None);
    }
}
