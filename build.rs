//! Embeds every `stdlib/*.rhai` module into the binary, so `import "net"` works
//! without the source tree and the bundled recipes can never drift from the build.
use std::{env, fs, path::Path};

fn main() {
    let dir = Path::new("stdlib");
    println!("cargo:rerun-if-changed=stdlib");
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.retain(|p| p.extension().is_some_and(|e| e == "rhai"));
    entries.sort();
    let mut out = String::from("/// Bundled modules: (import path, file name, source).\npub static STDLIB: &[(&str, &str, &str)] = &[\n");
    for path in entries {
        println!("cargo:rerun-if-changed={}", path.display());
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let abs = fs::canonicalize(&path).unwrap();
        out.push_str(&format!(
            "    ({stem:?}, \"stdlib/{stem}.rhai\", include_str!({:?})),\n",
            abs.display().to_string()
        ));
    }
    out.push_str("];\n");
    fs::write(
        Path::new(&env::var("OUT_DIR").unwrap()).join("stdlib.rs"),
        out,
    )
    .unwrap();
}
