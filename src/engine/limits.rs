//! Resource limits for scripts. Defaults stop runaway loops and memory blow-ups
//! without getting in the way of long provisioning jobs; every one is a CLI flag.
//!
//! The size limits hold per container (one array, one map, one string) and
//! are checked, in O(1), on the container a call or assignment changed: the
//! patched Rhai in vendor/rhai (see VIRTSCRIPT.md there) no longer re-measures
//! every nested value after each `push`, which made filling an array O(n²).
use clap::Args;
use rhai::Engine;

#[derive(Debug, Clone, Args)]
pub struct Limits {
    /// Stop a script after this many operations (0 = no limit)
    #[arg(long, value_name = "N", default_value_t = 1_000_000_000)]
    pub max_operations: u64,
    /// Deepest nesting of function calls (recursion deeper than the stack holds stops with an error first)
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_call_depth: usize,
    /// Longest string, in bytes (0 = no limit)
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_string_size: usize,
    /// Most elements in one array (0 = no limit)
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub max_array_size: usize,
    /// Most entries in one object map (0 = no limit)
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub max_map_size: usize,
    /// Largest script or module file, in bytes (0 = no limit)
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_SCRIPT_SIZE)]
    pub max_script_size: u64,
}

/// 16 MiB: a hundred times the largest script we know of, and a bound on what
/// `run /dev/stdin` or a mistaken path makes us read.
pub const DEFAULT_MAX_SCRIPT_SIZE: u64 = 16 * 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_operations: 1_000_000_000,
            max_call_depth: 64,
            max_string_size: 64 * 1024 * 1024,
            max_array_size: 1_000_000,
            max_map_size: 100_000,
            max_script_size: DEFAULT_MAX_SCRIPT_SIZE,
        }
    }
}

impl Limits {
    pub fn apply(&self, engine: &mut Engine) {
        engine
            .set_max_operations(self.max_operations)
            .set_max_call_levels(self.max_call_depth)
            .set_max_string_size(self.max_string_size)
            .set_max_array_size(self.max_array_size)
            .set_max_map_size(self.max_map_size)
            // Rhai's release defaults, fixed so debug builds (whose defaults are
            // half) accept exactly the scripts release builds do.
            .set_max_expr_depths(64, 32);
    }
}
