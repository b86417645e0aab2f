fn main() {
    eprintln!("collector: runtime not built yet");
    std::process::exit(1);
}
