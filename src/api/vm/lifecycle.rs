//! A VM's power states: start, shut down, destroy, reboot, pause, save and
//! restore, and waiting for a state.
use std::time::Duration;

use rhai::plugin::*;
use rhai::{Map, NativeCallContext};

use super::{state_name, Vm, STATES};
use crate::api::args::{self, Fields};
use crate::api::error::{AtExt, LibvirtResultExt, ScriptError, ScriptResult};
use crate::api::policy;
use crate::runtime::journal;
use crate::runtime::ErrorKind;
use crate::virt_ext::events::{self, WaitEnd};

/// Wait for `vm` to reach `state`, driven by lifecycle events.
fn wait_for_state(
    vm: &Vm,
    state: &str,
    timeout: Duration,
    ctx: &NativeCallContext,
) -> ScriptResult<bool> {
    // Watch first, then look: an event between the two cannot be missed.
    events::watch(vm.host.conn()).script(ctx)?;
    match events::wait_until(timeout, || {
        crate::virt_ext::domain::state(&vm.raw).map(|s| state_name(s) == state)
    }) {
        Ok(()) => Ok(true),
        Err(WaitEnd::TimedOut) => Ok(false),
        Err(WaitEnd::Stopped(reason)) => Err(crate::api::error::stopped(ctx, reason)),
        Err(WaitEnd::Failed(e)) => Err(e).script(ctx),
    }
}

#[export_module(manifest)]
pub mod vm_lifecycle_api {
    use super::*;

    /// Start (boot) a defined VM (`virsh start`). A VM that `define_vm` made
    /// with an install method runs its recorded install boot the first time
    /// (see `define_vm`).
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.destroy();
    /// vm.start();
    /// assert_eq(vm.state, "running");
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn start(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<()> {
        if let Some(phase) = crate::api::vm::phases::recorded(&vm.raw) {
            return crate::api::vm::phases::start_recorded(vm.host.conn(), &vm.raw, &phase, &ctx);
        }
        vm.raw.create().script(&ctx)?;
        let undo = vm.raw.clone();
        journal::record(
            "start_vm",
            format!("vm {}", vm.name()),
            Some(Box::new(move || undo.destroy())),
        );
        Ok(())
    }

    /// Ask the guest to shut down (ACPI) and wait up to 60 s until it is shut off.
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.shutdown();
    /// assert_eq(vm.state, "shut off");
    /// ```
    #[rhai_fn(name = "shutdown", pure, return_raw)]
    pub fn shutdown(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<()> {
        shutdown_with(ctx, vm, Map::new())
    }

    /// Shut down and wait: `timeout` (seconds, default 60), `force` (destroy
    /// after the timeout; without it the timeout is an error).
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.shutdown(#{ timeout: 30, force: true });
    /// assert_eq(vm.state, "shut off");
    /// ```
    #[rhai_fn(name = "shutdown", pure, return_raw)]
    pub fn shutdown_with(ctx: NativeCallContext, vm: &mut Vm, opts: Map) -> ScriptResult<()> {
        let f = Fields::new("", &opts);
        let timeout = match f.raw("timeout") {
            Some(v) => args::seconds("timeout", v).at(&ctx)?,
            None => Duration::from_secs(60),
        };
        let force = f.boolean("force").at(&ctx)?.unwrap_or(false);
        f.finish().at(&ctx)?;
        if !vm.raw.is_active().script(&ctx)? {
            return Ok(());
        }
        events::watch(vm.host.conn()).script(&ctx)?;
        vm.raw.shutdown().script(&ctx)?;
        // Rolled back, a VM that was running runs again.
        journal::record_with("shutdown_vm", format!("vm {}", vm.name()), || {
            let dom = vm.raw.clone();
            Some(Box::new(move || dom.create().map(|_| ())))
        });
        if wait_for_state(vm, "shut off", timeout, &ctx)? {
            return Ok(());
        }
        if force {
            vm.raw.destroy().script(&ctx)?;
            journal::record("destroy_vm", format!("vm {}", vm.name()), None);
            return Ok(());
        }
        Err(ScriptError::new(
            ErrorKind::Timeout,
            format!(
                "VM {} did not shut down within {} s (it is {}); pass force: true to power it off",
                vm.name(),
                timeout.as_secs_f64(),
                vm.state_name()
            ),
        )
        .with("field", "timeout")
        .with("value", timeout.as_secs_f64())
        .at(&ctx))
    }

    /// Power the VM off at once (`virsh destroy`).
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.destroy();
    /// assert_eq(vm.state, "shut off");
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn destroy(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<()> {
        vm.raw.destroy().script(&ctx)?;
        // Only a running VM can be destroyed: rolled back, it runs again.
        journal::record_with("destroy_vm", format!("vm {}", vm.name()), || {
            let dom = vm.raw.clone();
            Some(Box::new(move || dom.create().map(|_| ())))
        });
        Ok(())
    }

    /// Ask the guest to reboot (`virsh reboot`).
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.reboot();
    /// assert_eq(vm.state, "running");
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn reboot(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<()> {
        vm.raw.reboot(0).script(&ctx)?;
        journal::record("reboot_vm", format!("vm {}", vm.name()), None);
        Ok(())
    }

    /// Hard-reset the VM like the reset button (`virsh reset`).
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.reset();
    /// assert_eq(vm.state, "running");
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn reset(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<()> {
        vm.raw.reset().script(&ctx)?;
        journal::record("reset_vm", format!("vm {}", vm.name()), None);
        Ok(())
    }

    /// Pause the VM's CPUs (`virsh suspend`).
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.suspend();
    /// assert_eq(vm.state, "paused");
    /// vm.resume();
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn suspend(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<()> {
        vm.raw.suspend().script(&ctx)?;
        let undo = vm.raw.clone();
        journal::record(
            "suspend_vm",
            format!("vm {}", vm.name()),
            Some(Box::new(move || undo.resume())),
        );
        Ok(())
    }

    /// Resume a paused VM (`virsh resume`).
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.suspend();
    /// vm.resume();
    /// assert_eq(vm.state, "running");
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn resume(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<()> {
        vm.raw.resume().script(&ctx)?;
        journal::record("resume_vm", format!("vm {}", vm.name()), None);
        Ok(())
    }

    /// Save the running VM's memory to `path` on the host and stop it (`virsh save`).
    /// The file must not exist yet (pass `#{ overwrite: true }` to replace it). On
    /// the test driver and under `--plan` the file goes into a private temporary
    /// directory instead (`restore` with the same path finds it there).
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// // The embedded driver runs in this process: a relative path is in the
    /// // script's directory. A daemon needs an absolute path on its host.
    /// vm.save("test.save");
    /// assert_eq(vm.state, "shut off");
    /// vm.restore("test.save");
    /// assert_eq(vm.state, "running");
    /// ```
    #[rhai_fn(name = "save", pure, return_raw)]
    pub fn save(ctx: NativeCallContext, vm: &mut Vm, path: &str) -> ScriptResult<()> {
        save_with(ctx, vm, path, Map::new())
    }

    /// `save(path)` with `#{ overwrite: true }`: replace an existing file.
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.save("/tmp/again.save");
    /// vm.restore("/tmp/again.save");
    /// try { vm.save("/tmp/again.save"); } catch (e) { assert_eq(e.kind, "refused"); }
    /// vm.save("/tmp/again.save", #{ overwrite: true });
    /// assert_eq(vm.state, "shut off");
    /// ```
    #[rhai_fn(name = "save", pure, return_raw)]
    pub fn save_with(
        ctx: NativeCallContext,
        vm: &mut Vm,
        path: &str,
        opts: Map,
    ) -> ScriptResult<()> {
        let f = Fields::new("", &opts);
        let overwrite = f.boolean("overwrite").at(&ctx)?.unwrap_or(false);
        f.finish().at(&ctx)?;
        let local = policy::local_path(
            vm.host.uri(),
            "path",
            path,
            true,
            overwrite,
            policy::Writer::Daemon,
        )
        .at(&ctx)?;
        let local = local.to_string_lossy();
        crate::virt_ext::domain::save(&vm.raw, &local).script(&ctx)?;
        journal::record("save_vm", format!("vm {} to {local}", vm.name()), None);
        Ok(())
    }

    /// Restore a VM saved with `save(path)` (`virsh restore`).
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.save("test2.save");   // in the script's directory (embedded driver)
    /// vm.restore("test2.save");
    /// assert_eq(vm.state, "running");
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn restore(ctx: NativeCallContext, vm: &mut Vm, path: &str) -> ScriptResult<()> {
        let local = policy::local_path(
            vm.host.uri(),
            "path",
            path,
            false,
            false,
            policy::Writer::Daemon,
        )
        .at(&ctx)?;
        let local = local.to_string_lossy();
        vm.host.conn().restore_domain(&local).script(&ctx)?;
        journal::record("restore_vm", format!("vm {} from {local}", vm.name()), None);
        Ok(())
    }

    /// Wait until the VM is in `state` (`"running"`, `"shut off"`, `"paused"`...),
    /// at most `timeout` seconds; returns whether it got there. Driven by libvirt's
    /// lifecycle events, not by polling; Ctrl-C and `--timeout` stop it.
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.destroy();
    /// assert(vm.wait_state("shut off", 5));
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn wait_state(
        ctx: NativeCallContext,
        vm: &mut Vm,
        state: &str,
        timeout: Dynamic,
    ) -> ScriptResult<bool> {
        if !STATES.contains(&state) {
            return Err(ScriptError::invalid(
                "state",
                state,
                format!("must be one of: {}", STATES.join(", ")),
            )
            .at(&ctx));
        }
        let timeout = args::seconds("timeout", &timeout).at(&ctx)?;
        wait_for_state(vm, state, timeout, &ctx)
    }
}
