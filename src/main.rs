fn main() {
    std::process::exit(virtscript::cli::main());
}
